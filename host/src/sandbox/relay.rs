//! The inside of `egress`: run by bubblewrap as the sandbox's first program (the `powernode`
//! binary, mounted read-only), it listens on [`RELAY_ADDR`](super::RELAY_ADDR) in the
//! sandbox's own network namespace, hands each connection to the host's egress proxy through
//! the mounted unix socket, and runs the step's program with `HTTP(S)_PROXY` pointing at it;
//! it exits with the program's status. Plain threads and std I/O: it runs before anything else.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The hidden subcommand that runs the relay: `powernode __egress-relay SOCKET -- PROGRAM ARGS...`.
pub const SUBCOMMAND: &str = "__egress-relay";

/// Runs the relay for `program`, returning its exit status (128 + signal when killed).
pub fn main(socket: PathBuf, program: &str, args: &[String]) -> ExitCode {
    let listener = match TcpListener::bind(super::RELAY_ADDR) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("powernode egress relay: cannot listen on {}: {e}", super::RELAY_ADDR);
            return ExitCode::from(125);
        }
    };
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let socket = socket.clone();
            std::thread::spawn(move || relay(conn, &socket));
        }
    });
    match std::process::Command::new(program).args(args).status() {
        Ok(status) => {
            use std::os::unix::process::ExitStatusExt;
            let code = status.code().or_else(|| status.signal().map(|s| 128 + s)).unwrap_or(1);
            ExitCode::from(u8::try_from(code).unwrap_or(1))
        }
        Err(e) => {
            eprintln!("{program}: {e}");
            ExitCode::from(127)
        }
    }
}

/// Copies bytes both ways between `conn` and a fresh connection to the proxy.
fn relay(conn: TcpStream, socket: &Path) {
    let Ok(up) = UnixStream::connect(socket) else {
        let _ = conn.shutdown(Shutdown::Both);
        return;
    };
    let (Ok(conn_back), Ok(up_back)) = (conn.try_clone(), up.try_clone()) else {
        return;
    };
    let there = std::thread::spawn(move || pump(conn, up, |u| u.shutdown(Shutdown::Write)));
    pump(up_back, conn_back, |c| c.shutdown(Shutdown::Write));
    let _ = there.join();
}

fn pump<R: Read, W: Write>(mut from: R, mut to: W, done: impl FnOnce(&W) -> std::io::Result<()>) {
    let mut buf = [0u8; 16 << 10];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = done(&to);
}
