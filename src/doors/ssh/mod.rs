//! The SSH server: listens, applies the connection limits and the login
//! deadline, hands each connection to its handler, and shuts down gracefully
//! (sessions are told, given a moment to restore their terminals, then
//! disconnected).

mod channel;
mod connection;
mod cut;
mod handler;
pub mod host_key;
mod proxy;
mod resources;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use russh::keys::PrivateKey;
use russh::server::{run_stream, Config as SshConfig};
use russh::{Disconnect, MethodKind, MethodSet};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::core::Core;
use crate::core::{Config, SessionSlots};

pub use connection::{ConnectionInfo, Login};

/// How long a transfer in flight gets to finish after a shutdown was asked
/// for, before its client is told and its channel closed.
const TRANSFER_GRACE: Duration = Duration::from_secs(2);
/// How long a told client gets to take its goodbye before the connection is
/// dropped. The sentence and the channel's close queue behind the data the
/// client has not read yet (OpenSSH lets 2 MiB be in flight), so this is
/// counted from the telling: a client reading at 1 MiB/s still gets them.
const GOODBYE_GRACE: Duration = Duration::from_secs(3);
/// How long a connection gets after a shutdown was asked for: a transfer's
/// grace, then the goodbye. Terminal UIs say theirs within it.
const SHUTDOWN_GRACE: Duration = TRANSFER_GRACE.saturating_add(GOODBYE_GRACE);
/// How long a connection closed at the login deadline gets to take its
/// goodbye before it is dropped.
const DISCONNECT_GRACE: Duration = Duration::from_millis(500);
/// How often expired keys are wiped from memory.
const KEY_PURGE_INTERVAL: Duration = Duration::from_secs(15);
/// How often the accounts with open sessions are checked for an operator's
/// disable or delete: "within a second".
const ACCOUNT_WATCH_INTERVAL: Duration = Duration::from_millis(500);

/// `sfs serve`: starts the core, binds the listener and runs until SIGINT or
/// SIGTERM.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    resources::keep_large_blocks_apart();
    // The port first: a second server on it stops before it opens anything,
    // naming the server that holds its folders (and one on another port
    // stops at the core's hold of its folders).
    let listen = config.server.listen;
    let listener = match TcpListener::bind(listen).await {
        Ok(listener) => listener,
        Err(e) => {
            let running = match crate::core::data_holder(&config) {
                Some(holder) => format!(
                    " (sfs {holder} already serves these folders: {})",
                    crate::core::messages::STOP_THE_OTHER_SERVER
                ),
                None => String::new(),
            };
            return Err(e).context(format!(
                "cannot listen on {listen}{running}; nothing was touched"
            ));
        }
    };
    let core = Core::start(config).await?;
    resources::raise_open_file_limit(&core.config().limits);
    let host_key = host_key::load_or_create(&core.config().server.host_key_dir)?;
    tracing::info!(%listen, "sfs is listening: ssh -p {} {}", listen.port(), core.config().server.public_host);
    run(core, host_key, listener, shutdown_signal()).await
}

/// Waits for SIGINT or SIGTERM.
async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(term) => term,
        Err(e) => {
            tracing::warn!(error = %e, "cannot watch SIGTERM; stop with Ctrl-C");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("shutting down");
}

/// Messages waiting per channel inside russh (at most 2 MiB of packets).
const CHANNEL_BUFFER: usize = 32;

fn ssh_config(core: &Core, host_key: PrivateKey) -> SshConfig {
    let limits = &core.config().limits;
    SshConfig {
        server_id: russh::SshId::Standard(
            format!("SSH-2.0-sfs_{}", env!("CARGO_PKG_VERSION")).into(),
        ),
        methods: MethodSet::from(&[MethodKind::PublicKey, MethodKind::KeyboardInteractive][..]),
        auth_rejection_time: Duration::from_millis(500),
        // OpenSSH probes with "none" first; answering that at once is safe
        // because it never succeeds.
        auth_rejection_time_initial: Some(Duration::ZERO),
        keys: vec![host_key],
        // Bulk transfers: a larger window keeps a client's pipelined writes
        // flowing, and the largest packet OpenSSH accepts halves per-packet
        // work against the default 32 KiB.
        window_size: 16 * 1024 * 1024,
        maximum_packet_size: 65535,
        // Messages russh holds for a channel its door has not read yet
        // (each up to a packet): what a client that floods one costs
        // beyond the door's own budgets.
        channel_buffer_size: CHANNEL_BUFFER,
        // A backstop only: the terminal UI counts idleness from user input
        // and goes first; a quarter more (up to a minute) leaves it room.
        inactivity_timeout: Some(Duration::from_secs(
            limits.idle_timeout_seconds + (limits.idle_timeout_seconds / 4).clamp(1, 60),
        )),
        ..SshConfig::default()
    }
}

/// Serves connections from `listener` until `shutdown` completes.
pub async fn run(
    core: Arc<Core>,
    host_key: PrivateKey,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let ssh_config = Arc::new(ssh_config(&core, host_key));
    let slots = SessionSlots::new(&core.config().limits);
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let mut connections = JoinSet::new();
    let mut purge = tokio::time::interval(KEY_PURGE_INTERVAL);
    // Connections ended since freed memory was last handed back.
    let mut closed_since_trim = 0u32;
    let watcher = core.clone();
    let watch_accounts =
        tokio::spawn(async move { watcher.watch_accounts(ACCOUNT_WATCH_INTERVAL).await });
    let sweeper = core.clone();
    let cleanup = Duration::from_secs(core.config().storage.collect_interval_seconds.max(1));
    let clean_up = tokio::spawn(async move { sweeper.clean_up(cleanup).await });
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            _ = purge.tick() => {
                core.purge_expired();
                if std::mem::take(&mut closed_since_trim) > 0 {
                    tokio::task::spawn_blocking(resources::return_freed_memory);
                }
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {
                closed_since_trim += 1;
            }
            accepted = listener.accept() => match accepted {
                Ok((socket, peer)) => {
                    // Without this, a reply that follows a small message
                    // (the key line or a refusal on stderr) waits for the
                    // client's delayed ACK of it: ~40 ms per request under
                    // Nagle's algorithm. russh's own `nodelay` setting only
                    // applies to sockets it accepts itself.
                    if let Err(e) = socket.set_nodelay(true) {
                        tracing::warn!(%peer, error = %e, "could not turn off Nagle's algorithm");
                    }
                    connections.spawn(admit(
                        core.clone(),
                        ssh_config.clone(),
                        slots.clone(),
                        socket,
                        peer,
                        shutdown_rx.clone(),
                    ));
                }
                Err(e) => {
                    // Out of file descriptors and the like: back off, keep serving.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
        }
    }
    watch_accounts.abort();
    clean_up.abort();
    let _ = shutdown_tx.send(true);
    let drain = async { while connections.join_next().await.is_some() {} };
    let _ = tokio::time::timeout(SHUTDOWN_GRACE * 2, drain).await;
    connections.shutdown().await;
    // What the sessions did is in the audit log before the process ends.
    core.audit_written().await;
    core.release_folders();
    tracing::info!("stopped");
    Ok(())
}

/// Takes a new connection: learns the client's address (from a balancer's
/// PROXY header when the peer is one), takes its session slot and serves it.
async fn admit(
    core: Arc<Core>,
    ssh_config: Arc<SshConfig>,
    slots: SessionSlots,
    mut socket: TcpStream,
    peer: SocketAddr,
    shutdown: watch::Receiver<bool>,
) {
    let deadline = Duration::from_secs(core.config().limits.login_deadline_seconds);
    let started = tokio::time::Instant::now();
    let (client, socket) = if core.config().server.trusts_proxy(peer.ip()) {
        match tokio::time::timeout(deadline, proxy::read_header(&mut socket, peer)).await {
            Ok(Ok(client)) => (client, proxy::RefuseHeader::passing(socket)),
            Ok(Err(e)) => {
                tracing::warn!(balancer = %peer, error = %e, "connection from a balancer refused");
                return;
            }
            Err(_) => {
                tracing::warn!(balancer = %peer, "no PROXY header before the login deadline");
                return;
            }
        }
    } else {
        (peer, proxy::RefuseHeader::new(socket, peer))
    };
    let slot = slots.try_acquire(client.ip());
    let (authenticated_tx, authenticated_rx) = watch::channel(false);
    let connection = handler::Connection::new(
        core.clone(),
        client,
        slot,
        shutdown.clone(),
        authenticated_tx,
    );
    serve_connection(
        ssh_config,
        socket,
        client,
        connection,
        deadline.saturating_sub(started.elapsed()),
        authenticated_rx,
        shutdown,
    )
    .await;
}

/// Runs one connection: the handshake and the login must finish within the
/// login deadline; on shutdown the session gets a moment, then a disconnect.
async fn serve_connection(
    ssh_config: Arc<SshConfig>,
    socket: proxy::RefuseHeader<TcpStream>,
    peer: SocketAddr,
    connection: handler::Connection,
    deadline: Duration,
    mut authenticated: watch::Receiver<bool>,
    mut shutdown: watch::Receiver<bool>,
) {
    // One deadline from the accept on: version exchange, key exchange and
    // authentication all count, so a peer that stalls anywhere before its
    // login is gone by then and its slot with it.
    let login_deadline = tokio::time::sleep(deadline);
    tokio::pin!(login_deadline);
    // However this function ends, the session's socket ends with it.
    let (socket, _cutter) = cut::cuttable(socket);
    let session = tokio::select! {
        started = run_stream(ssh_config, socket, connection) => match started {
            Ok(session) => session,
            Err(e) => {
                tracing::debug!(%peer, error = %e, "handshake failed");
                return;
            }
        },
        _ = &mut login_deadline => return,
    };
    let handle = session.handle();
    tokio::pin!(session);
    loop {
        tokio::select! {
            result = &mut session => {
                if let Err(e) = result {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                }
                return;
            }
            _ = &mut login_deadline, if !*authenticated.borrow() => {
                // A peer still in the key exchange cannot be sent the
                // message; either way the connection is dropped here.
                let goodbye = handle.disconnect(
                    Disconnect::ByApplication,
                    "login deadline passed; connect again".into(),
                    String::new(),
                );
                let _ = tokio::time::timeout(DISCONNECT_GRACE, goodbye).await;
                let _ = tokio::time::timeout(DISCONNECT_GRACE, &mut session).await;
                tracing::info!(%peer, "closed at the login deadline");
                return;
            }
            changed = authenticated.changed(), if !*authenticated.borrow() => {
                if changed.is_err() {
                    // The handler is gone: the session is ending.
                    let _ = (&mut session).await;
                    return;
                }
            }
            _ = stopping(&mut shutdown) => {
                // Let terminal UIs tell their users and restore the screen;
                // a session that ended meanwhile must not be polled again.
                if tokio::time::timeout(SHUTDOWN_GRACE, &mut session).await.is_ok() {
                    return;
                }
                let _ = handle
                    .disconnect(Disconnect::ByApplication, "server shutting down".into(), String::new())
                    .await;
                let _ = tokio::time::timeout(DISCONNECT_GRACE, &mut session).await;
                return;
            }
        }
    }
}

/// Resolves once a shutdown was asked for.
async fn stopping(shutdown: &mut watch::Receiver<bool>) {
    // The guard `wait_for` returns is not Send; drop it here.
    let _ = shutdown.wait_for(|stop| *stop).await.is_ok();
}
