//! `powernode logs RUN_ID [--follow]`: a run's log; following it streams the server's
//! Server-Sent Events until the run ends, resuming after a dropped connection from the last
//! line seen, and exits with the run's result.

use std::process::ExitCode;
use std::time::Duration;

use reqwest::Method;
use serde_json::json;

use super::{Client, Code, Failure, Outcome, ServerArgs};

/// Arguments of `powernode logs`.
#[derive(Debug, clap::Args)]
pub struct LogsArgs {
    /// The run's id.
    run: String,
    /// Stream the log while the run goes on; exit 0 if it succeeds, 1 otherwise.
    #[arg(long, short)]
    follow: bool,
    #[command(flatten)]
    server: ServerArgs,
}

/// Connections to a followed log that may fail in a row before the command gives up.
const RECONNECTS: u32 = 5;

/// `powernode logs`.
pub(in crate::cli) async fn logs(args: LogsArgs) -> Outcome {
    let client = Client::new(&args.server)?;
    if args.follow {
        return follow(&client, &args.run).await;
    }
    let response = client
        .send(
            client.request(Method::GET, client.url(&["runs", &args.run, "logs"])),
            false,
        )
        .await?;
    let text = response.text().await.map_err(|e| client.unreachable(e))?;
    for line in text.lines() {
        print_line(&client, None, line);
    }
    Ok(ExitCode::SUCCESS)
}

fn print_line(client: &Client, id: Option<u64>, line: &str) {
    if client.json() {
        println!("{}", json!({ "id": id, "line": line }));
    } else {
        println!("{}", crate::printable::for_stdout(line));
    }
}

/// One Server-Sent Event as the log stream sends them.
#[derive(Debug, Default, PartialEq)]
struct Event {
    name: Option<String>,
    id: Option<u64>,
    data: Option<String>,
}

/// Splits a Server-Sent Events stream into events; bytes arrive in arbitrary chunks.
#[derive(Default)]
struct Parser {
    buffer: Vec<u8>,
    event: Event,
}

impl Parser {
    /// Feeds `chunk`, returning the events it completed.
    fn feed(&mut self, chunk: &[u8]) -> Vec<Event> {
        self.buffer.extend_from_slice(chunk);
        let mut done = Vec::new();
        while let Some(end) = self.buffer.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.buffer.drain(..=end).collect();
            let line = String::from_utf8_lossy(&line);
            let line = line.trim_end_matches(['\n', '\r']);
            if line.is_empty() {
                // A blank line ends an event; one carrying nothing (a keep-alive) is dropped.
                let event = std::mem::take(&mut self.event);
                if event.data.is_some() || event.name.is_some() {
                    done.push(event);
                }
                continue;
            }
            let (field, value) = line.split_once(':').unwrap_or((line, ""));
            let value = value.strip_prefix(' ').unwrap_or(value);
            match field {
                "event" => self.event.name = Some(value.to_owned()),
                "id" => self.event.id = value.parse().ok(),
                "data" => match &mut self.event.data {
                    Some(data) => {
                        data.push('\n');
                        data.push_str(value);
                    }
                    None => self.event.data = Some(value.to_owned()),
                },
                // Comments (`:`) and `retry` mean nothing here.
                _ => {}
            }
        }
        done
    }
}

async fn follow(client: &Client, run: &str) -> Outcome {
    let mut last: Option<u64> = None;
    let mut failures = 0;
    loop {
        let mut url = client.url(&["runs", run, "logs"]);
        url.query_pairs_mut().append_pair("follow", "true");
        let mut request = client.request(Method::GET, url);
        if let Some(id) = last {
            request = request.header("Last-Event-ID", id.to_string());
        }
        // A refusal (unknown run, bad token) is final; a lost connection is tried again.
        let mut response = match client.send(request, true).await {
            Ok(response) => response,
            Err(failure) if failure.code == Code::Unreachable && failures < RECONNECTS => {
                failures += 1;
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
            Err(failure) => return Err(failure),
        };
        let mut parser = Parser::default();
        loop {
            let chunk = match response.chunk().await {
                Ok(Some(chunk)) => chunk,
                // The stream ended or broke before `end`: reconnect from the last line.
                Ok(None) | Err(_) => break,
            };
            failures = 0;
            for event in parser.feed(&chunk) {
                if event.name.as_deref() == Some("end") {
                    return Ok(ended(client, event.data.as_deref().unwrap_or("")));
                }
                if event.id.is_some() {
                    last = event.id;
                }
                print_line(client, event.id, event.data.as_deref().unwrap_or(""));
            }
        }
        failures += 1;
        if failures > RECONNECTS {
            return Err(Failure::new(
                Code::Unreachable,
                format!("the log stream of run {run} broke {RECONNECTS} times in a row before the run ended"),
            ));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Says how the run ended and turns it into the exit code: 0 for `success`, else 1.
fn ended(client: &Client, state: &str) -> ExitCode {
    if client.json() {
        println!("{}", json!({ "end": state }));
    } else {
        eprintln!("run ended: {}", crate::printable::printable(state));
    }
    if state == "success" {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(Code::RunFailed as u8)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_split_across_chunks_come_out_whole() {
        let mut parser = Parser::default();
        assert!(parser.feed(b"id: 0\ndata: [build] hel").is_empty());
        let events = parser.feed(b"lo\n\n:keep-alive\n\nid: 1\ndata: a\ndata: b\n\nevent: end\ndata: failure\n\n");
        assert_eq!(
            events,
            vec![
                Event {
                    name: None,
                    id: Some(0),
                    data: Some("[build] hello".into())
                },
                Event {
                    name: None,
                    id: Some(1),
                    data: Some("a\nb".into())
                },
                Event {
                    name: Some("end".into()),
                    id: None,
                    data: Some("failure".into())
                },
            ]
        );
    }
}
