//! What a connection's session channels share: who logged in, how, from
//! where, and the connection's budgets.

use std::net::SocketAddr;
use std::sync::Arc;

use russh::server::Handle;
use tokio::sync::watch;

use crate::core::{Account, Budget, ConnectionKey, Core, LoginMethod, OpenFiles};

/// Who the connection logged in as.
#[derive(Clone, Debug)]
pub enum Login {
    /// Terminal UI only; it asks for the email and the code itself.
    Guest,
    /// The SSH login proved this account, this way.
    Account(Account, LoginMethod),
}

/// What a session channel knows about its connection.
#[derive(Clone)]
pub struct ConnectionInfo {
    pub core: Arc<Core>,
    pub remote: SocketAddr,
    pub login: Login,
    pub key: Option<ConnectionKey>,
    pub shutdown: watch::Receiver<bool>,
    /// For writing to a channel whose door was stopped under it.
    pub handle: Handle,
    /// The connection's open-file budget.
    pub open_files: OpenFiles,
    /// What its sftp channels may take ahead of their replies, together.
    pub sftp_backlog: Budget,
}
