//! A throwaway PostgreSQL cluster for tests and benchmarks: `initdb` in a temporary
//! directory, `postgres` listening only on a unix socket there, stopped and removed on drop.
//! It needs Debian's `postgresql` package (`scripts/setup.sh --test` installs it). A root
//! process runs the cluster as the `postgres` user (or `nobody`): PostgreSQL refuses root.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sqlx::Connection;
use sqlx::postgres::PgConnection;

/// The database user every throwaway cluster has (trusted, so no password).
const USER: &str = "powernode";

/// A running throwaway cluster.
pub struct Cluster {
    dir: PathBuf,
    /// The temporary folder `dir` is, removed with the cluster; `None` for a cluster kept
    /// in a folder of the caller's ([`Cluster::start_in`]).
    _temp: Option<tempfile::TempDir>,
    bin: PathBuf,
    server: Option<Child>,
    /// The user the cluster runs as, when this process is root.
    run_as: Option<(u32, u32)>,
    /// Whether commits wait for the disk (as in production); tests skip it for speed.
    fsync: bool,
}

impl Cluster {
    /// Creates and starts a cluster that does not wait for the disk (for tests).
    pub fn start() -> Result<Cluster, String> {
        Cluster::start_with(false)
    }

    /// Creates and starts a cluster whose commits wait for the disk, as a production
    /// database's do (for benchmarks).
    pub fn start_durable() -> Result<Cluster, String> {
        Cluster::start_with(true)
    }

    fn start_with(fsync: bool) -> Result<Cluster, String> {
        let temp = tempfile::Builder::new()
            .prefix("powernode-pg-")
            .tempdir()
            .map_err(|e| format!("creating the cluster's folder: {e}"))?;
        Cluster::start_at(temp.path().to_path_buf(), Some(temp), fsync)
    }

    /// Starts the cluster kept in `dir`, creating it there the first time: a test that
    /// restarts a server finds the same database again. Stopping it keeps the files.
    pub fn start_in(dir: &Path) -> Result<Cluster, String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("creating `{}`: {e}", dir.display()))?;
        Cluster::start_at(dir.to_path_buf(), None, false)
    }

    fn start_at(dir: PathBuf, temp: Option<tempfile::TempDir>, fsync: bool) -> Result<Cluster, String> {
        let bin = bin_dir()?;
        let run_as = nix::unistd::geteuid().is_root().then(|| {
            nix::unistd::User::from_name("postgres")
                .ok()
                .flatten()
                .map_or((65534, 65534), |u| (u.uid.as_raw(), u.gid.as_raw()))
        });
        if let Some((uid, gid)) = run_as {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))
                .and_then(|()| std::os::unix::fs::chown(&dir, Some(uid), Some(gid)))
                .map_err(|e| format!("handing the cluster's folder to uid {uid}: {e}"))?;
        }
        let mut cluster = Cluster {
            dir,
            _temp: temp,
            bin,
            server: None,
            run_as,
            fsync,
        };
        let data = cluster.data_dir();
        if data.join("PG_VERSION").exists() {
            cluster.start_server()?;
            return Ok(cluster);
        }
        let init = cluster
            .command("initdb")
            .arg("-D")
            .arg(&data)
            .args(["-U", USER, "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync"])
            .output()
            .map_err(|e| format!("running initdb: {e}"))?;
        if !init.status.success() {
            return Err(format!("initdb failed: {}", String::from_utf8_lossy(&init.stderr)));
        }
        cluster.start_server()?;
        Ok(cluster)
    }

    /// The folder of the unix socket (`?host=` of a URL).
    pub fn socket_dir(&self) -> &Path {
        self.dir.as_path()
    }

    /// The URL of database `name` of this cluster.
    pub fn url(&self, name: &str) -> String {
        format!(
            "postgres://{USER}@localhost/{name}?host={}",
            self.socket_dir().display()
        )
    }

    /// Creates database `name` and returns its URL.
    pub async fn database(&self, name: &str) -> Result<String, String> {
        let mut admin = PgConnection::connect(&self.url("postgres"))
            .await
            .map_err(|e| format!("connecting to the throwaway cluster: {e}"))?;
        sqlx::raw_sql(&format!("CREATE DATABASE \"{name}\""))
            .execute(&mut admin)
            .await
            .map_err(|e| format!("creating database {name}: {e}"))?;
        Ok(self.url(name))
    }

    /// Creates database `name` and returns how to reach it with `pool_size` connections.
    pub async fn config(&self, name: &str, pool_size: u32) -> Result<super::PgConfig, String> {
        Ok(super::PgConfig {
            url: self.database(name).await?,
            pool_size,
            statement_timeout_ms: 10_000,
        })
    }

    /// Stops the server (a fast shutdown: clients are disconnected, committed work is kept)
    /// and starts it again, as an operator restarting the database would.
    pub fn restart(&mut self) -> Result<(), String> {
        self.stop(nix::sys::signal::Signal::SIGINT);
        self.start_server()
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.as_path().join("data")
    }

    fn start_server(&mut self) -> Result<(), String> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.as_path().join("server.log"))
            .map_err(|e| format!("opening the server log: {e}"))?;
        let fsync = if self.fsync { "fsync=on" } else { "fsync=off" };
        let child = self
            .command("postgres")
            .arg("-D")
            .arg(self.data_dir())
            .arg("-k")
            .arg(self.socket_dir())
            // No TCP at all: only this process's tests reach it, through the socket.
            .args(["-c", "listen_addresses=", "-c", fsync, "-c", "max_connections=300"])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("starting postgres: {e}"))?;
        self.server = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        let socket = self.socket_dir().join(".s.PGSQL.5432");
        while !socket.exists() || !self.accepts() {
            if let Some(Ok(Some(status))) = self.server.as_mut().map(Child::try_wait) {
                let log = std::fs::read_to_string(self.dir.as_path().join("server.log")).unwrap_or_default();
                return Err(format!("postgres exited ({status}): {log}"));
            }
            if Instant::now() > deadline {
                return Err("postgres did not accept connections within 60 s".into());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }

    /// Whether the server takes connections (`pg_isready`).
    fn accepts(&self) -> bool {
        Command::new(self.bin.join("pg_isready"))
            .arg("-h")
            .arg(self.socket_dir())
            .args(["-U", USER, "-q"])
            .status()
            .is_ok_and(|s| s.success())
    }

    fn stop(&mut self, signal: nix::sys::signal::Signal) {
        if let Some(mut child) = self.server.take() {
            let pid = nix::unistd::Pid::from_raw(child.id() as i32);
            let _ = nix::sys::signal::kill(pid, signal);
            let _ = child.wait();
        }
    }

    /// A command for PostgreSQL program `program`, as the cluster's user.
    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        let mut cmd = match self.run_as {
            Some((uid, gid)) => {
                let mut c = Command::new("setpriv");
                c.arg(format!("--reuid={uid}"))
                    .arg(format!("--regid={gid}"))
                    .arg("--clear-groups")
                    .arg("--")
                    .arg(path);
                c
            }
            None => Command::new(path),
        };
        cmd.env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("LANG", "C")
            .current_dir(self.dir.as_path());
        cmd
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // Immediate shutdown: nothing here needs to outlive the test.
        self.stop(nix::sys::signal::Signal::SIGQUIT);
    }
}

/// The folder of PostgreSQL's server programs: Debian's newest `/usr/lib/postgresql/N/bin`,
/// else wherever `initdb` is on `PATH`.
fn bin_dir() -> Result<PathBuf, String> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin"))))
        .filter(|(_, bin): &(u32, PathBuf)| bin.join("postgres").exists())
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Ok(bin);
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .find(|dir| dir.join("initdb").exists() && dir.join("postgres").exists())
        .ok_or_else(|| {
            "PostgreSQL's server programs are not installed: run `scripts/setup.sh --test` \
             (or `apt-get install postgresql`)"
                .into()
        })
}
