//! A small bot on Majlis's HTTP API: it follows the event stream and answers `!ping` with
//! `pong`, and `!time` with the bot host's time, in the channel the command came from.
//!
//! Run a node for the bot's own device (an admin adds it with `--role bot`), with the API:
//!
//! ```sh
//! majlisd --data ./ci-bot run --http 127.0.0.1:7480 &
//! TOKEN=$(majlisd --data ./ci-bot api token create --name bot --scopes read,send)
//! MAJLIS_API=http://127.0.0.1:7480 MAJLIS_TOKEN=$TOKEN cargo run --example bot
//! ```
//!
//! It resumes where it left off after a dropped connection (`Last-Event-ID`), and never
//! answers itself. Any HTTP client and SSE reader does the same; this one uses hyper, which
//! `majlisd` already has.

use std::time::Duration;

use anyhow::{bail, Context, Result};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

type Http = Client<HttpConnector, Full<Bytes>>;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let api = std::env::var("MAJLIS_API").unwrap_or_else(|_| "http://127.0.0.1:7480".into());
    let token =
        std::env::var("MAJLIS_TOKEN").context("set MAJLIS_TOKEN to a token with read,send")?;
    // The API closes a connection idle for 10 s (`http::HEAD_TIME`); one kept longer would
    // race that close when the bot next answers.
    let client: Http = Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(5))
        .pool_timer(hyper_util::rt::TokioTimer::new())
        .build_http();
    let mut last_id: Option<String> = None;
    loop {
        if let Err(e) = follow(&client, &api, &token, &mut last_id).await {
            eprintln!("bot: {e:#}; reconnecting in 2 s");
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

/// Follow the event stream until it ends, answering commands.
async fn follow(client: &Http, api: &str, token: &str, last_id: &mut Option<String>) -> Result<()> {
    let mut req = hyper::Request::get(format!("{api}/v1/events"))
        .header("authorization", format!("Bearer {token}"));
    if let Some(id) = last_id {
        req = req.header("last-event-id", id.as_str());
    }
    let resp = client.request(req.body(Full::default())?).await?;
    if !resp.status().is_success() {
        bail!("the event stream answered {}", resp.status());
    }
    eprintln!("bot: following {api}/v1/events");
    let mut body = resp.into_body();
    let mut buf = String::new();
    let (mut id, mut data) = (None, String::new());
    while let Some(frame) = body.frame().await {
        let Ok(chunk) = frame?.into_data() else {
            continue;
        };
        buf.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(i) = buf.find('\n') {
            let line: String = buf.drain(..=i).collect();
            let line = line.trim_end();
            if let Some(v) = line.strip_prefix("id:") {
                id = Some(v.trim().to_string());
            } else if let Some(v) = line.strip_prefix("data:") {
                data.push_str(v.trim_start());
            } else if line.is_empty() && !data.is_empty() {
                // The end of one event.
                let ev: Value = serde_json::from_str(&data).unwrap_or_default();
                data.clear();
                if let Some(id) = id.take() {
                    *last_id = Some(id);
                }
                if let Some(reply) = answer(&ev) {
                    let m = &ev["message"];
                    let channel = m["channel"].as_str().unwrap_or_default();
                    // A direct message is answered to its sender: the API names a DM channel
                    // by the other member, `@NAME` (`%40` in a URL).
                    let channel = match channel.starts_with('@') {
                        true => format!("%40{}", m["sender"].as_str().unwrap_or_default()),
                        false => channel.to_string(),
                    };
                    post(client, api, token, &channel, &reply).await?;
                }
            }
        }
    }
    Ok(())
}

/// What the bot says to a message event, if anything.
fn answer(ev: &Value) -> Option<String> {
    if ev["type"] != "message" || ev["message"]["locked"] == true {
        return None;
    }
    match ev["message"]["text"].as_str()?.trim() {
        "!ping" => Some("pong".into()),
        "!time" => Some(format!(
            "it is {} here",
            humantime::format_rfc3339_seconds(std::time::SystemTime::now())
        )),
        _ => None,
    }
}

async fn post(client: &Http, api: &str, token: &str, channel: &str, text: &str) -> Result<()> {
    let body = serde_json::json!({ "text": text }).to_string();
    let req = hyper::Request::post(format!("{api}/v1/channels/{channel}/messages"))
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))?;
    let resp = client.request(req).await?;
    if !resp.status().is_success() {
        let status = resp.status();
        let text = resp.into_body().collect().await?.to_bytes();
        bail!(
            "posting answered {status}: {}",
            String::from_utf8_lossy(&text)
        );
    }
    Ok(())
}
