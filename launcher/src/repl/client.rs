//! A small blocking HTTP/1.1 client for the control plane: one connection per request, the
//! token in `Authorization`, and the response body (chunked or not) read as a stream, so a
//! statement's frames are handled as they arrive.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::connection::{self, ConnectionInfo};
use crate::wire::Frame;

/// How long to wait for a server that says nothing (running queries report every 250 ms).
const READ_TIMEOUT: Duration = Duration::from_secs(300);

/// A server to talk to.
pub struct Client {
    pub info: ConnectionInfo,
    file: String,
}

/// The frames of one statement, as they arrive.
pub struct Frames {
    body: Box<dyn Read>,
}

impl Frames {
    /// The next frame; `None` when the server closed the stream.
    pub fn next(&mut self) -> Result<Option<Frame>> {
        Frame::read(&mut self.body)
    }
}

impl Client {
    /// Reads the connection file.
    pub fn open(file: &Path) -> Result<Self> {
        Ok(Self { info: connection::read(file)?, file: file.display().to_string() })
    }

    fn request(&self, method: &str, path: &str, body: &str) -> Result<(u16, Box<dyn Read>)> {
        let host = &self.info.host;
        let address = if host.contains(':') && !host.starts_with('[') {
            format!("[{host}]:{}", self.info.port) // an IPv6 address
        } else {
            format!("{host}:{}", self.info.port)
        };
        let unreachable =
            || format!("cannot reach the starflow server at {address} (from {}); is it still running?", self.file);
        let socket = address.to_socket_addrs().with_context(unreachable)?.next().with_context(unreachable)?;
        let mut stream = TcpStream::connect_timeout(&socket, Duration::from_secs(10)).with_context(unreachable)?;
        stream.set_read_timeout(Some(READ_TIMEOUT))?;
        stream.set_nodelay(true)?;
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {}\r\n\
             Content-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.info.token,
            body.len()
        )
        .with_context(unreachable)?;
        let mut reader = BufReader::new(stream);
        let mut line = String::new();
        reader.read_line(&mut line).with_context(unreachable)?;
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .with_context(|| format!("{address} did not answer like a starflow server: {line:?}"))?;
        let (mut chunked, mut length) = (false, None);
        loop {
            line.clear();
            reader.read_line(&mut line)?;
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                let (name, value) = (name.trim().to_ascii_lowercase(), value.trim());
                if name == "transfer-encoding" && value.eq_ignore_ascii_case("chunked") {
                    chunked = true;
                } else if name == "content-length" {
                    length = value.parse::<u64>().ok();
                }
            }
        }
        let body: Box<dyn Read> = match (chunked, length) {
            (true, _) => Box::new(Chunked { inner: reader, left: 0, done: false }),
            (false, Some(n)) => Box::new(reader.take(n)),
            (false, None) => Box::new(reader),
        };
        Ok((status, body))
    }

    fn check(status: u16, mut body: Box<dyn Read>) -> Result<Box<dyn Read>> {
        if status == 200 {
            return Ok(body);
        }
        let mut text = String::new();
        let _ = body.read_to_string(&mut text);
        if status == 401 {
            bail!("the server refused the connection: {}", text.trim());
        }
        bail!("the server answered {status}: {}", text.trim())
    }

    /// Sends one statement; its frames follow.
    pub fn statement(&self, sql: &str, max_rows: u64) -> Result<Frames> {
        let (status, body) = self.request("POST", &format!("/statement?max_rows={max_rows}"), sql)?;
        Ok(Frames { body: Self::check(status, body)? })
    }

    /// Asks the server to cancel query `id`.
    pub fn cancel(&self, id: u64) -> Result<()> {
        let (status, body) = self.request("POST", &format!("/cancel/{id}"), "")?;
        if status == 404 {
            return Ok(()); // it already finished
        }
        Self::check(status, body).map(drop)
    }

    /// Catalog names and their columns (also checks the token).
    pub fn catalogs(&self) -> Result<BTreeMap<String, Vec<String>>> {
        let (status, body) = self.request("GET", "/catalogs", "")?;
        serde_json::from_reader(Self::check(status, body)?).context("reading the catalogs")
    }
}

/// `Transfer-Encoding: chunked`: `<hex size>\r\n<data>\r\n` … `0\r\n\r\n`.
struct Chunked<R> {
    inner: R,
    left: usize,
    done: bool,
}

impl<R: BufRead> Read for Chunked<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        use std::io::{Error, ErrorKind};
        if self.done || buf.is_empty() {
            return Ok(0);
        }
        if self.left == 0 {
            let mut line = String::new();
            if self.inner.read_line(&mut line)? == 0 {
                return Err(Error::new(ErrorKind::UnexpectedEof, "the server closed the connection mid-response"));
            }
            let size = line.trim().split(';').next().unwrap_or("");
            self.left = usize::from_str_radix(size, 16)
                .map_err(|_| Error::new(ErrorKind::InvalidData, format!("bad chunk size {size:?}")))?;
            if self.left == 0 {
                self.done = true;
                return Ok(0);
            }
        }
        let want = buf.len().min(self.left);
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(Error::new(ErrorKind::UnexpectedEof, "the server closed the connection mid-response"));
        }
        self.left -= n;
        if self.left == 0 {
            let mut crlf = [0u8; 2];
            self.inner.read_exact(&mut crlf)?;
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunked_bodies_are_decoded() {
        let raw = b"5\r\nhello\r\n1;ext=1\r\n \r\n6\r\nworld!\r\n0\r\n\r\n";
        let mut body = String::new();
        Chunked { inner: &raw[..], left: 0, done: false }.read_to_string(&mut body).unwrap();
        assert_eq!(body, "hello world!");
        let cut = b"5\r\nhel";
        let err = Chunked { inner: &cut[..], left: 0, done: false }.read_to_string(&mut String::new()).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof);
    }
}
