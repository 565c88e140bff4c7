//! The control plane on process 0: an actix-web server for REPL and script clients.
//!
//! - `POST /statement?max_rows=N` (body: one statement) → a stream of frames ([`crate::wire`]).
//! - `POST /cancel/{id}` → cancels a running query.
//! - `GET /catalogs` → `{"name": ["column", …]}` (for tab completion).
//! - `GET /status` → the status page (HTML): running queries, processes, views, reports.
//! - `GET /report/{id}` → the performance report (HTML) of a recent query.
//!
//! Every request carries `Authorization: Bearer TOKEN`; others get 401. The two pages also
//! take `?token=TOKEN`, so that a browser can open them. Each statement runs on its own
//! thread, so the HTTP runtime never waits on planning or on the workers.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};

use actix_web::dev::ServerHandle;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use anyhow::{Context, Result};
use bytes::Bytes;
use serde::Deserialize;

use super::execute::{Frames, State, execute};
use crate::connection::same_token;

/// Frames on their way to one client; dropped (and the query cancelled) when it goes away.
struct FrameStream(tokio::sync::mpsc::Receiver<Bytes>);

impl futures_core::Stream for FrameStream {
    type Item = Result<Bytes, Infallible>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        self.0.poll_recv(cx).map(|frame| frame.map(Ok))
    }
}

fn authorised(req: &HttpRequest, state: &State) -> bool {
    req.headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|t| same_token(t.trim(), &state.token))
}

/// The pages a browser opens: the header, or `?token=` in the address.
fn page_authorised(req: &HttpRequest, state: &State) -> bool {
    authorised(req, state)
        || web::Query::<TokenParam>::from_query(req.query_string())
            .is_ok_and(|q| same_token(q.token.trim(), &state.token))
}

#[derive(Deserialize)]
struct TokenParam {
    token: String,
}

fn refused(req: &HttpRequest) -> HttpResponse {
    tracing::warn!(peer = ?req.peer_addr(), path = req.path(), "request without the right token refused");
    HttpResponse::Unauthorized().body("wrong or missing token: use the connection file this server wrote")
}

fn client(req: &HttpRequest) -> String {
    req.peer_addr().map_or_else(|| "unknown".to_string(), |a| a.to_string())
}

#[derive(Deserialize)]
struct StatementParams {
    max_rows: Option<u64>,
}

/// The body and the query string are read only after the token is checked, so a client
/// without it learns nothing but 401.
async fn statement(req: HttpRequest, state: web::Data<State>, body: web::Bytes) -> HttpResponse {
    if !authorised(&req, &state) {
        return refused(&req);
    }
    let Ok(params) = web::Query::<StatementParams>::from_query(req.query_string()) else {
        return HttpResponse::BadRequest().body("max_rows must be a number");
    };
    let Ok(body) = String::from_utf8(body.to_vec()) else {
        return HttpResponse::BadRequest().body("the statement is not UTF-8");
    };
    let (tx, rx) = tokio::sync::mpsc::channel(8);
    let state = state.into_inner();
    let who = client(&req);
    let max_rows = params.max_rows.unwrap_or(0);
    let spawned = std::thread::Builder::new()
        .name(format!("statement {who}"))
        .spawn(move || execute(&state, &body, max_rows, &who, &Frames::new(tx)));
    match spawned {
        Ok(_) => HttpResponse::Ok().content_type("application/x-starflow-frames").streaming(FrameStream(rx)),
        Err(e) => HttpResponse::ServiceUnavailable().body(format!("cannot start a thread for the statement: {e}")),
    }
}

async fn cancel(req: HttpRequest, state: web::Data<State>) -> HttpResponse {
    if !authorised(&req, &state) {
        return refused(&req);
    }
    let Some(id) = req.match_info().get("id").and_then(|i| i.parse::<u64>().ok()) else {
        return HttpResponse::BadRequest().body("the query id must be a number");
    };
    match state.running.lock().expect("running lock").get(&id) {
        Some(r) => {
            tracing::info!(query = id, client = %client(&req), "cancel requested");
            (r.cancel)();
            HttpResponse::Ok().body(format!("cancelling query {id}"))
        }
        None => HttpResponse::NotFound().body(format!("no running query {id}")),
    }
}

async fn catalogs(req: HttpRequest, state: web::Data<State>) -> HttpResponse {
    if !authorised(&req, &state) {
        return refused(&req);
    }
    let set = state.catalogs();
    let columns: BTreeMap<&str, Vec<&str>> = set
        .names()
        .filter_map(|n| set.get(n).map(|c| (n, c.schema.fields().iter().map(|f| f.name().as_str()).collect())))
        .collect();
    HttpResponse::Ok().json(columns)
}

fn html(page: String) -> HttpResponse {
    HttpResponse::Ok().content_type("text/html; charset=utf-8").insert_header(("Cache-Control", "no-store")).body(page)
}

async fn status(req: HttpRequest, state: web::Data<State>) -> HttpResponse {
    if !page_authorised(&req, &state) {
        return refused(&req);
    }
    let state = state.into_inner();
    let token = state.token.clone();
    // Measuring the workers runs a small query: off the HTTP runtime.
    match web::block(move || super::status::page(&state, &token)).await {
        Ok(Ok(page)) => html(page),
        Ok(Err(e)) => HttpResponse::InternalServerError().body(format!("{e:#}")),
        Err(e) => HttpResponse::ServiceUnavailable().body(e.to_string()),
    }
}

async fn report(req: HttpRequest, state: web::Data<State>) -> HttpResponse {
    if !page_authorised(&req, &state) {
        return refused(&req);
    }
    let Some(id) = req.match_info().get("id").and_then(|i| i.parse::<u64>().ok()) else {
        return HttpResponse::BadRequest().body("the query id must be a number");
    };
    let state = state.into_inner();
    match web::block(move || super::status::report(&state, id)).await {
        Ok(Some(page)) => html(page),
        Ok(None) => HttpResponse::NotFound().body(format!("no report of query {id} (the server keeps the last few)")),
        Err(e) => HttpResponse::ServiceUnavailable().body(e.to_string()),
    }
}

/// Serves `state` on `listener` from a thread of its own; returns the handle that stops it
/// and the thread.
pub fn start(
    state: Arc<State>,
    listener: std::net::TcpListener,
) -> Result<(ServerHandle, std::thread::JoinHandle<()>)> {
    let (handle_tx, handle_rx) = std::sync::mpsc::channel();
    let thread = std::thread::Builder::new()
        .name("control plane".into())
        .spawn(move || {
            let system = actix_web::rt::System::new();
            let result = system.block_on(async move {
                let data = web::Data::from(state);
                let server = HttpServer::new(move || {
                    App::new()
                        .app_data(data.clone())
                        .route("/statement", web::post().to(statement))
                        .route("/cancel/{id}", web::post().to(cancel))
                        .route("/catalogs", web::get().to(catalogs))
                        .route("/status", web::get().to(status))
                        .route("/report/{id}", web::get().to(report))
                })
                .workers(2)
                .disable_signals()
                .shutdown_timeout(5)
                .listen(listener)?
                .run();
                let _ = handle_tx.send(server.handle());
                server.await
            });
            if let Err(e) = result {
                tracing::error!(error = %e, "the control plane stopped");
            }
        })
        .context("cannot start the control plane thread")?;
    let handle = handle_rx.recv().context("the control plane did not start")?;
    Ok((handle, thread))
}
