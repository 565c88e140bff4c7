//! Multi-process execution: connecting the processes of one query (with a deadline and a
//! handshake that checks every process planned the same query), counting the bytes they
//! send each other, and turning a lost peer into a clear error.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use starflow_catalogs::ParquetCatalog;
use timely::communication::allocator::zero_copy::stream::Stream;

use crate::error::RunError;
use crate::plan::Plan;

const MAGIC: &[u8; 8] = b"STARFLOW";

/// Where this process sits among the processes of a query.
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    /// This process's index.
    pub process: usize,
    /// `host:port` of every process, by index.
    pub addresses: Vec<String>,
    /// How long to wait for every peer to connect.
    pub connect_timeout: Duration,
    /// A hash of the command (statement, catalogs, threads per process): every process must
    /// run the same one.
    pub fingerprint: u64,
}

/// What process 0 sends every other process once connected: the plan and the catalogs it
/// reads (so no other process reads a footer or parses SQL), or why there is nothing to run.
#[allow(clippy::large_enum_variant)] // one per run
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Shipped {
    /// Run this plan over these catalogs.
    Run {
        /// The plan.
        plan: Plan,
        /// The catalogs it scans.
        catalogs: Vec<ParquetCatalog>,
    },
    /// Serve statements over these catalogs (`starflow serve`): plans arrive later, sequenced.
    Serve {
        /// Every catalog the server serves.
        catalogs: Vec<ParquetCatalog>,
    },
    /// The statement was `EXPLAIN`: process 0 printed the plan; nothing to run.
    Explained,
    /// Process 0 could not plan the statement.
    Failed(String),
}

impl Shipped {
    /// Encodes for the wire.
    pub fn encode(&self) -> Result<Vec<u8>, RunError> {
        bincode::serialize(self).map_err(|e| RunError::Internal(format!("encoding the plan: {e}")))
    }

    /// Decodes what [`Shipped::encode`] wrote.
    pub fn decode(bytes: &[u8]) -> Result<Self, RunError> {
        bincode::deserialize(bytes).map_err(|e| RunError::Cluster(format!("process 0 sent an unreadable plan: {e}")))
    }
}

/// The connections of one process to all others.
pub struct Connected {
    /// This process's index.
    pub process: usize,
    /// `host:port` of every process.
    pub addresses: Vec<String>,
    /// One stream per process (None for this one).
    pub streams: Vec<Option<CountingStream>>,
    /// Bytes written to the streams so far.
    pub traffic: Traffic,
    /// What process 0 shipped (on the other processes).
    pub shipped: Option<Vec<u8>>,
}

/// Bytes this process has sent to the others (data, progress and the shipped plan).
#[derive(Debug, Clone, Default)]
pub struct Traffic {
    /// To all of them.
    pub sent: Arc<AtomicU64>,
    /// To each process, by index (this process's own entry stays 0).
    pub to: Arc<Vec<AtomicU64>>,
}

impl Traffic {
    /// Bytes sent to each process so far.
    pub fn to_each(&self) -> Vec<u64> {
        self.to.iter().map(|c| c.load(Ordering::Relaxed)).collect()
    }
}

/// A TCP stream that counts the bytes written to it.
pub struct CountingStream {
    inner: TcpStream,
    traffic: Traffic,
    peer: usize,
}

impl Read for CountingStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf)
    }
}

impl Write for CountingStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.traffic.sent.fetch_add(n as u64, Ordering::Relaxed);
        self.traffic.to[self.peer].fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl Stream for CountingStream {
    fn try_clone(&self) -> io::Result<Self> {
        Ok(Self { inner: self.inner.try_clone()?, traffic: self.traffic.clone(), peer: self.peer })
    }
    fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        self.inner.set_nonblocking(nonblocking)
    }
    fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.inner.shutdown(how)
    }
}

fn err(message: String) -> RunError {
    RunError::Cluster(message)
}

/// Connects to every peer: accepts connections from higher-numbered processes on this
/// process's address and connects to lower-numbered ones, retrying until the deadline.
/// Process 0 sends `ship` to every peer; the others receive it.
pub fn connect(options: &ClusterOptions, ship: Option<&[u8]>) -> Result<Connected, RunError> {
    let (me, n) = (options.process, options.addresses.len());
    if me >= n {
        return Err(err(format!("process index {me} is not below the process count {n}")));
    }
    let deadline = Instant::now() + options.connect_timeout;
    let own = &options.addresses[me];
    let listener = TcpListener::bind(own).map_err(|e| err(format!("process {me} cannot listen on {own}: {e}")))?;
    listener.set_nonblocking(true).map_err(|e| err(format!("listener on {own}: {e}")))?;
    let (accepted, connected) = std::thread::scope(|scope| {
        let accept = scope.spawn(|| accept_higher(&listener, options, deadline, ship));
        let connect = scope.spawn(|| connect_lower(options, deadline));
        (accept.join().expect("accept thread panicked"), connect.join().expect("connect thread panicked"))
    });
    let (mut streams, shipped) = connected?;
    streams.push(None);
    streams.extend(accepted?);
    // The plan shipment counts as traffic too (process 0 sends it to every higher process).
    let shipment = |peer: usize| ship.filter(|_| peer > me).map_or(0, |b| b.len() as u64 + 8);
    let traffic = Traffic {
        sent: Arc::new(AtomicU64::new((0..n).map(shipment).sum())),
        to: Arc::new((0..n).map(|peer| AtomicU64::new(shipment(peer))).collect()),
    };
    let streams = streams
        .into_iter()
        .enumerate()
        .map(|(peer, s)| s.map(|inner| CountingStream { inner, traffic: traffic.clone(), peer }))
        .collect();
    Ok(Connected { process: me, addresses: options.addresses.clone(), streams, traffic, shipped })
}

fn handshake(stream: &mut TcpStream, me: usize, fingerprint: u64) -> io::Result<()> {
    let mut hello = Vec::with_capacity(24);
    hello.extend_from_slice(MAGIC);
    hello.extend_from_slice(&(me as u64).to_be_bytes());
    hello.extend_from_slice(&fingerprint.to_be_bytes());
    stream.write_all(&hello)
}

fn read_hello(stream: &mut TcpStream) -> io::Result<(usize, u64)> {
    let mut hello = [0u8; 24];
    stream.read_exact(&mut hello)?;
    if &hello[..8] != MAGIC {
        return Err(io::Error::other("a connection that is not a starflow process"));
    }
    let index = u64::from_be_bytes(hello[8..16].try_into().expect("8 bytes")) as usize;
    let fingerprint = u64::from_be_bytes(hello[16..24].try_into().expect("8 bytes"));
    Ok((index, fingerprint))
}

fn accept_higher(
    listener: &TcpListener,
    o: &ClusterOptions,
    deadline: Instant,
    ship: Option<&[u8]>,
) -> Result<Vec<Option<TcpStream>>, RunError> {
    let me = o.process;
    let mut peers: Vec<Option<TcpStream>> = (me + 1..o.addresses.len()).map(|_| None).collect();
    while peers.iter().any(Option::is_none) {
        match listener.accept() {
            Ok((mut stream, from)) => {
                stream
                    .set_nonblocking(false)
                    .and_then(|()| stream.set_read_timeout(Some(Duration::from_secs(10))))
                    .map_err(|e| err(format!("connection from {from}: {e}")))?;
                let (index, fingerprint) = match read_hello(&mut stream) {
                    Ok(h) => h,
                    Err(e) => {
                        tracing::warn!(%from, error = %e, "ignoring a stray connection");
                        continue;
                    }
                };
                if index <= me || index >= o.addresses.len() {
                    return Err(err(format!("unexpected connection from process {index} at {from}")));
                }
                if fingerprint != o.fingerprint {
                    return Err(err(format!(
                        "process {index} ({}) was started with a different statement, catalogs or worker count than process {me}",
                        o.addresses[index]
                    )));
                }
                if let Some(bytes) = ship {
                    let mut framed = (bytes.len() as u64).to_be_bytes().to_vec();
                    framed.extend_from_slice(bytes);
                    stream.write_all(&framed).map_err(|e| err(format!("sending the plan to process {index}: {e}")))?;
                }
                stream.set_read_timeout(None).map_err(|e| err(e.to_string()))?;
                stream.set_nodelay(true).map_err(|e| err(e.to_string()))?;
                peers[index - me - 1] = Some(stream);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if Instant::now() > deadline {
                    let missing: Vec<String> = peers
                        .iter()
                        .enumerate()
                        .filter(|(_, p)| p.is_none())
                        .map(|(i, _)| format!("process {} ({})", me + 1 + i, o.addresses[me + 1 + i]))
                        .collect();
                    return Err(err(format!(
                        "timed out after {:?} waiting for {} to connect to process {me} ({})",
                        o.connect_timeout,
                        missing.join(", "),
                        o.addresses[me]
                    )));
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(e) => return Err(err(format!("accepting connections on {}: {e}", o.addresses[me]))),
        }
    }
    Ok(peers)
}

type Lower = (Vec<Option<TcpStream>>, Option<Vec<u8>>);

fn connect_lower(o: &ClusterOptions, deadline: Instant) -> Result<Lower, RunError> {
    let me = o.process;
    let mut peers = Vec::with_capacity(me);
    let mut shipped = None;
    for (index, address) in o.addresses.iter().enumerate().take(me) {
        let mut last_error: String;
        let stream = loop {
            let attempt = address
                .to_socket_addrs()
                .and_then(|mut addrs| addrs.next().ok_or_else(|| io::Error::other("no address")))
                .and_then(|a| TcpStream::connect_timeout(&a, Duration::from_secs(2)));
            match attempt {
                Ok(mut stream) => {
                    handshake(&mut stream, me, o.fingerprint)
                        .map_err(|e| err(format!("handshake with process {index} ({address}): {e}")))?;
                    if index == 0 {
                        let wait = deadline.saturating_duration_since(Instant::now()).max(Duration::from_secs(5));
                        stream.set_read_timeout(Some(wait)).map_err(|e| err(e.to_string()))?;
                        shipped = Some(read_shipped(&mut stream).map_err(|e| {
                            err(format!("process 0 ({address}) sent no plan: {e} (did it fail? see its messages)"))
                        })?);
                        stream.set_read_timeout(None).map_err(|e| err(e.to_string()))?;
                    }
                    stream.set_nodelay(true).map_err(|e| err(e.to_string()))?;
                    break stream;
                }
                Err(e) => last_error = e.to_string(),
            }
            if Instant::now() > deadline {
                return Err(err(format!(
                    "process {index} ({address}) never answered process {me} within {:?}: {last_error}",
                    o.connect_timeout
                )));
            }
            std::thread::sleep(Duration::from_millis(2));
        };
        peers.push(Some(stream));
    }
    Ok((peers, shipped))
}

fn read_shipped(stream: &mut TcpStream) -> io::Result<Vec<u8>> {
    let mut len = [0u8; 8];
    stream.read_exact(&mut len)?;
    let mut bytes = vec![0u8; u64::from_be_bytes(len) as usize];
    stream.read_exact(&mut bytes)?;
    Ok(bytes)
}

/// Makes a lost peer fatal with a clear message: timely's network threads (named
/// `timely:recv-N` / `timely:send-N`) panic when a connection breaks; the hook names the
/// lost process and its address and exits, so no rank waits forever.
pub fn install_peer_loss_hook(addresses: Vec<String>, me: usize) {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let thread = std::thread::current();
        let name = thread.name().unwrap_or("");
        let peer = name.strip_prefix("timely:recv-").or_else(|| name.strip_prefix("timely:send-"));
        if let Some(index) = peer.and_then(|p| p.parse::<usize>().ok()) {
            let address = addresses.get(index).map_or("?", String::as_str);
            eprintln!(
                "error: process {me} lost its connection to process {index} ({address}): {}",
                info.payload()
                    .downcast_ref::<String>()
                    .map(String::as_str)
                    .or_else(|| info.payload().downcast_ref::<&str>().copied())
                    .unwrap_or("connection error")
            );
            std::process::exit(2);
        }
        previous(info);
    }));
}
