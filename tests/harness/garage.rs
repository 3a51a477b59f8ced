//! A real Garage (S3-compatible object store) for the tests: one node shared
//! by a whole test binary, or a cluster of its own for a test that kills
//! nodes. Each is configured here: layout, key, bucket. Garage is installed
//! by `.ci/run` (`cargo install --locked garage@2.5.0`); without it a test
//! says it was skipped, and under CI it fails.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use sfs::config::{Config, StorageBackend};

const BUCKET: &str = "sfs";

/// The Garage binary, where `cargo install` puts it.
pub fn garage_binary() -> Option<PathBuf> {
    let on_path = Command::new("sh")
        .args(["-c", "command -v garage"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    let in_cargo = std::env::var_os("HOME")
        .map(|home| Path::new(&home).join(".cargo/bin/garage"))
        .filter(|path| path.exists());
    on_path.or(in_cargo)
}

/// Garage, or a note that the test is skipped (a failure under CI).
pub fn have_garage() -> bool {
    if garage_binary().is_some() {
        return true;
    }
    assert!(
        std::env::var("CI").map_or(true, |ci| ci != "true"),
        "garage is needed under CI (cargo install --locked garage@2.5.0)"
    );
    eprintln!("skipped: garage is not installed");
    false
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// One Garage node process.
pub struct Node {
    pub config: PathBuf,
    pub s3_port: u16,
    child: Option<Child>,
}

impl Node {
    fn write_config(dir: &Path, index: usize, secret: &str, replication: usize) -> Node {
        let root = dir.join(format!("node{index}"));
        std::fs::create_dir_all(&root).expect("garage folder");
        let (rpc_port, s3_port, admin_port) = (free_port(), free_port(), free_port());
        let config = root.join("garage.toml");
        std::fs::write(
            &config,
            format!(
                "metadata_dir = \"{root}/meta\"\n\
                 data_dir = \"{root}/data\"\n\
                 db_engine = \"lmdb\"\n\
                 compression_level = \"none\"\n\
                 replication_factor = {replication}\n\
                 rpc_bind_addr = \"127.0.0.1:{rpc_port}\"\n\
                 rpc_public_addr = \"127.0.0.1:{rpc_port}\"\n\
                 rpc_secret = \"{secret}\"\n\
                 [s3_api]\n\
                 s3_region = \"garage\"\n\
                 api_bind_addr = \"127.0.0.1:{s3_port}\"\n\
                 root_domain = \".s3.garage.localhost\"\n\
                 [admin]\n\
                 api_bind_addr = \"127.0.0.1:{admin_port}\"\n",
                root = root.display()
            ),
        )
        .expect("garage config");
        Node {
            config,
            s3_port,
            child: None,
        }
    }

    fn start(&mut self) {
        let log = std::fs::File::create(self.config.with_file_name("garage.log")).expect("log");
        let mut cmd = Command::new(garage_binary().expect("garage"));
        cmd.arg("-c")
            .arg(&self.config)
            .arg("server")
            .env("RUST_LOG", "garage=warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log);
        self.child = Some(spawn_tied_to_this_process(cmd));
    }

    /// `garage -c CONFIG ARGS…`; its standard output, or a panic with its
    /// error.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = Command::new(garage_binary().expect("garage"))
            .arg("-c")
            .arg(&self.config)
            .args(args)
            .output()
            .expect("garage runs");
        assert!(
            out.status.success(),
            "garage {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn try_cli(&self, args: &[&str]) -> Option<String> {
        let out = Command::new(garage_binary()?)
            .arg("-c")
            .arg(&self.config)
            .args(args)
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// The node's full id, `<hex>@127.0.0.1:<port>` (read from its key
    /// file: the node may not answer yet).
    fn id(&self) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(id) = self.try_cli(&["node", "id", "-q"]) {
                return id.trim().to_string();
            }
            assert!(Instant::now() < deadline, "garage did not start");
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// `kill -9`.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &self.pid().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(child) = &self.child {
            // A stopped node would not die of SIGKILL's delivery order issues,
            // but resume it first anyway so it exits promptly.
            let _ = Command::new("kill")
                .args(["-CONT", &child.id().to_string()])
                .status();
        }
        self.kill();
    }
}

/// Starts `cmd` so that it dies with the test process, even if the test
/// binary exits without running destructors (statics are never dropped):
/// the child is spawned from a thread that lives as long as the process,
/// and asks the kernel for SIGKILL when that thread ends.
fn spawn_tied_to_this_process(mut cmd: Command) -> Child {
    use std::os::unix::process::CommandExt;
    static SPAWNER: OnceLock<std::sync::mpsc::Sender<(Command, std::sync::mpsc::Sender<Child>)>> =
        OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel::<(Command, std::sync::mpsc::Sender<Child>)>();
        std::thread::spawn(move || {
            for (mut cmd, reply) in rx {
                let child = cmd.spawn().expect("garage starts");
                let _ = reply.send(child);
            }
            // The channel lives in a static: this thread never ends.
        });
        tx
    });
    // SAFETY: prctl is async-signal-safe and touches no memory of ours.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    let (reply, child) = std::sync::mpsc::channel();
    spawner.send((cmd, reply)).expect("spawner");
    child.recv().expect("garage started")
}

/// A configured Garage: nodes in one layout, a key and a bucket.
pub struct Garage {
    pub nodes: Vec<Node>,
    pub access_key: String,
    pub secret_key: String,
    /// The environment variables its credentials are given to sfs in (one
    /// pair per Garage: a test binary may run several).
    pub access_env: String,
    pub secret_env: String,
    _dir: tempfile::TempDir,
}

impl Garage {
    /// `count` nodes, each holding every object (replication = count).
    pub fn start(count: usize) -> Garage {
        let dir = tempfile::tempdir().expect("garage folder");
        let secret: String = (0..32)
            .map(|_| format!("{:02x}", rand::random::<u8>()))
            .collect();
        let mut nodes: Vec<Node> = (0..count)
            .map(|i| Node::write_config(dir.path(), i, &secret, count))
            .collect();
        for node in &mut nodes {
            node.start();
        }
        let ids: Vec<String> = nodes.iter().map(Node::id).collect();
        for id in &ids[1..] {
            retry_cli(&nodes[0], &["node", "connect", id]);
        }
        for (i, id) in ids.iter().enumerate() {
            let short = id.split('@').next().expect("id");
            let zone = format!("dc{i}");
            retry_cli(
                &nodes[0],
                &["layout", "assign", "-z", &zone, "-c", "1G", short],
            );
        }
        retry_cli(&nodes[0], &["layout", "apply", "--version", "1"]);
        let created = retry_cli(&nodes[0], &["key", "create", "sfs-test"]);
        let field = |name: &str| {
            created
                .lines()
                .find_map(|line| line.trim().strip_prefix(name))
                .map(|v| v.trim().to_string())
                .unwrap_or_else(|| panic!("no {name} in: {created}"))
        };
        let (access_key, secret_key) = (field("Key ID:"), field("Secret key:"));
        retry_cli(&nodes[0], &["bucket", "create", BUCKET]);
        retry_cli(
            &nodes[0],
            &[
                "bucket", "allow", "--read", "--write", "--owner", BUCKET, "--key", "sfs-test",
            ],
        );
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (access_env, secret_env) = (
            format!("SFS_TEST_S3_KEY_ID_{n}"),
            format!("SFS_TEST_S3_SECRET_{n}"),
        );
        std::env::set_var(&access_env, &access_key);
        std::env::set_var(&secret_env, &secret_key);
        Garage {
            nodes,
            access_key,
            secret_key,
            access_env,
            secret_env,
            _dir: dir,
        }
    }

    /// The single-node Garage this test binary shares (started on first
    /// use), or None when Garage is not installed.
    pub fn shared() -> Option<&'static Garage> {
        static SHARED: OnceLock<Option<Garage>> = OnceLock::new();
        SHARED
            .get_or_init(|| have_garage().then(|| Garage::start(1)))
            .as_ref()
    }

    /// A three-node Garage with replication 3 this test binary shares.
    pub fn shared_three() -> Option<&'static Garage> {
        static SHARED: OnceLock<Option<Garage>> = OnceLock::new();
        SHARED
            .get_or_init(|| have_garage().then(|| Garage::start(3)))
            .as_ref()
    }

    /// Points `config` at this Garage, under its own prefix so that servers
    /// sharing it never see each other's blobs. The credentials go to the
    /// environment variables the config names.
    pub fn configure(&self, config: &mut Config, node: usize, prefix: &str) {
        let storage = &mut config.storage;
        storage.backend = StorageBackend::S3;
        storage.s3.endpoint = format!("http://127.0.0.1:{}", self.nodes[node].s3_port);
        storage.s3.region = "garage".into();
        storage.s3.bucket = BUCKET.into();
        storage.s3.prefix = prefix.into();
        storage.s3.access_key_env = self.access_env.clone();
        storage.s3.secret_key_env = self.secret_env.clone();
    }
}

/// A node takes commands once it listens, and keys and buckets a moment
/// after a layout change.
fn retry_cli(node: &Node, args: &[&str]) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(out) = node.try_cli(args) {
            return out;
        }
        if Instant::now() > deadline {
            return node.cli(args);
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// Whether the tests run on S3 (`SFS_TEST_BACKEND=s3`): then every test
/// server stores its blobs in the shared Garage.
pub fn s3_backend() -> bool {
    std::env::var("SFS_TEST_BACKEND").is_ok_and(|b| b == "s3")
}

/// A prefix no other server of this run uses.
pub fn unique_prefix() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "t{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// The object keys under `prefix` in this Garage's bucket (through node
/// `node`): what the store really holds.
impl Garage {
    pub async fn objects(&self, node: usize, prefix: &str) -> Vec<String> {
        use futures::StreamExt;
        use object_store::ObjectStore;
        let store = object_store::aws::AmazonS3Builder::new()
            .with_endpoint(format!("http://127.0.0.1:{}", self.nodes[node].s3_port))
            .with_allow_http(true)
            .with_region("garage")
            .with_bucket_name(BUCKET)
            .with_access_key_id(&self.access_key)
            .with_secret_access_key(&self.secret_key)
            .build()
            .expect("client");
        let prefix = object_store::path::Path::from(prefix);
        let mut keys: Vec<String> = store
            .list(Some(&prefix))
            .map(|meta| meta.expect("listing").location.to_string())
            .collect()
            .await;
        keys.sort();
        keys
    }
}
