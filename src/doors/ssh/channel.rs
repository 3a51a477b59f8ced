//! One session channel, in its own task: waits for the client's request
//! (a shell with or without a pty, a command, a subsystem) and hands the
//! channel to the front door that serves it.

use russh::server::Msg;
use russh::{Channel, ChannelId, ChannelMsg};
use tokio::sync::mpsc;

use super::connection::{ConnectionInfo, Login};
use super::TRANSFER_GRACE;
use crate::core::messages;
use crate::core::Who;
use crate::core::{Budget, SessionMetric};
use crate::doors::tui::{self, Input, SessionContext};

/// Input events waiting for the terminal UI, and their bytes; a client that
/// floods faster than the UI reads loses the excess rather than growing a
/// buffer.
const INPUT_QUEUE: usize = 256;
const INPUT_BYTES: u64 = 1 << 20;
/// Frames waiting for the client; when it reads slowly, the UI waits.
const OUTPUT_QUEUE: usize = 4;

/// Printed to guests that ask for anything but the terminal UI.
fn guest_refusal(info: &ConnectionInfo) -> String {
    let server = &info.core.config().server;
    format!(
        "sfs: {}\r\n",
        messages::guest_refusal(&server.public_host, server.public_port)
    )
}

pub async fn run(info: ConnectionInfo, mut channel: Channel<Msg>) {
    let id = channel.id();
    let mut pty: Option<(String, u16, u16)> = None;
    let mut env: Vec<(String, String)> = Vec::new();
    while let Some(msg) = channel.wait().await {
        match msg {
            ChannelMsg::SetEnv {
                variable_name,
                variable_value,
                ..
            } if tui::TERMINAL_ENV.contains(&variable_name.as_str())
                && variable_value.len() <= 256
                && env.len() < tui::TERMINAL_ENV.len() * 4 =>
            {
                env.push((variable_name, variable_value))
            }
            ChannelMsg::RequestPty {
                term,
                col_width,
                row_height,
                ..
            } => pty = Some((term, clamp(col_width), clamp(row_height))),
            ChannelMsg::RequestShell { .. } => {
                match pty {
                    Some(pty) => {
                        let _session = SessionMetric::open("tui");
                        terminal_ui(info, channel, pty, env).await
                    }
                    None => {
                        refuse(
                            channel,
                            "sfs: the terminal UI needs a terminal: connect with `ssh -t`; \
                             for transfers use sftp or scp\r\n",
                        )
                        .await
                    }
                }
                return;
            }
            ChannelMsg::Exec { command, .. } => {
                match account_of(&info) {
                    Some(who) => {
                        let _session = SessionMetric::open("exec");
                        let door = crate::doors::exec::commands::run(
                            info.core.clone(),
                            who.clone(),
                            channel,
                            &command,
                        );
                        until_closed(&info, &who, id, door).await
                    }
                    None => refuse(channel, &guest_refusal(&info)).await,
                }
                return;
            }
            ChannelMsg::RequestSubsystem { name, .. } if name == "sftp" => {
                match account_of(&info) {
                    Some(who) => {
                        let _session = SessionMetric::open("sftp");
                        let door = crate::doors::sftp::run(
                            info.core.clone(),
                            who.clone(),
                            channel,
                            info.sftp_backlog.clone(),
                        );
                        until_closed(&info, &who, id, door).await
                    }
                    None => refuse(channel, &guest_refusal(&info)).await,
                }
                return;
            }
            ChannelMsg::RequestSubsystem { .. } => {
                let message = match info.login {
                    Login::Guest => guest_refusal(&info),
                    Login::Account(..) => {
                        "sfs: unknown subsystem; use sftp or the terminal UI\r\n".to_string()
                    }
                };
                refuse(channel, &message).await;
                return;
            }
            ChannelMsg::Eof | ChannelMsg::Close => return,
            _ => {}
        }
    }
}

/// The account a logged-in connection acts for; None for guests.
fn account_of(info: &ConnectionInfo) -> Option<Who> {
    match &info.login {
        Login::Account(account, _) => Some(Who::new(account, info.remote, info.open_files.clone())),
        Login::Guest => None,
    }
}

fn clamp(size: u32) -> u16 {
    size.clamp(1, u32::from(u16::MAX)) as u16
}

/// Runs a transfer door until it ends, until the operator closes the
/// account, or until the server stops (a transfer gets [`TRANSFER_GRACE`]
/// to finish first): then the door is dropped (an upload in flight is
/// abandoned, nothing of it stored) and the channel closes with a line
/// saying why and exit status 1.
async fn until_closed(
    info: &ConnectionInfo,
    who: &Who,
    id: ChannelId,
    door: impl std::future::Future<Output = ()>,
) {
    let mut door = Box::pin(door);
    let mut shutdown = info.shutdown.clone();
    let stopping = async move {
        // A dropped sender means no shutdown will ever be announced.
        if shutdown.wait_for(|stop| *stop).await.is_err() {
            std::future::pending::<()>().await;
        }
        tokio::time::sleep(TRANSFER_GRACE).await;
    };
    let reason = tokio::select! {
        () = &mut door => return,
        reason = info.core.account_closed(who.account_id) => reason,
        () = stopping => messages::SERVER_STOPPING.to_string(),
    };
    // The door goes first: an upload in flight is abandoned, its partial
    // blob removed, before its client hears that it ended. Dropping the
    // door's channel halves does not close the channel; the line below
    // does.
    drop(door);
    let handle = &info.handle;
    let line = format!("sfs: {reason}\r\n");
    let _ = handle.extended_data(id, 1, line.into_bytes()).await;
    let _ = handle.exit_status_request(id, 1).await;
    let _ = handle.eof(id).await;
    let _ = handle.close(id).await;
}

/// One line on stderr, exit status 1, channel closed.
async fn refuse(channel: Channel<Msg>, message: &str) {
    let _ = channel
        .extended_data_bytes(1, message.as_bytes().to_vec())
        .await;
    let _ = channel.exit_status(1).await;
    let _ = channel.eof().await;
    let _ = channel.close().await;
}

/// Runs the terminal UI over the channel: input bytes and window changes go
/// to the UI through a bounded queue, its frames come back through another.
async fn terminal_ui(
    info: ConnectionInfo,
    channel: Channel<Msg>,
    (term, cols, rows): (String, u16, u16),
    env: Vec<(String, String)>,
) {
    let (mut reader, writer) = channel.split();
    let (input_tx, input_rx) = mpsc::channel(INPUT_QUEUE);
    let (output_tx, mut output_rx) = mpsc::channel::<Vec<u8>>(OUTPUT_QUEUE);
    let account = match info.login {
        Login::Account(account, method) => Some((account, method)),
        Login::Guest => None,
    };
    let context = SessionContext {
        core: info.core,
        remote: info.remote,
        ssh_key: info.key,
        account,
        cols,
        rows,
        term,
        env,
        shutdown: info.shutdown,
    };
    let ui = tokio::spawn(tui::run(context, input_rx, output_tx));

    let queued = Budget::new(INPUT_BYTES);
    let forward_input = async move {
        while let Some(msg) = reader.wait().await {
            let input = match msg {
                ChannelMsg::Data { data } => {
                    let mut held = queued.grant();
                    let room = held.resize(data.len());
                    // Typed keys and codes: the copy is wiped by the UI.
                    let input = room.then(|| Input::Data {
                        bytes: data.to_vec(),
                        held,
                    });
                    crate::text::wipe::wipe(data);
                    match input {
                        Some(input) => input,
                        None => continue,
                    }
                }
                ChannelMsg::WindowChange {
                    col_width,
                    row_height,
                    ..
                } => Input::Resize {
                    cols: clamp(col_width),
                    rows: clamp(row_height),
                },
                ChannelMsg::Eof | ChannelMsg::Close => break,
                _ => continue,
            };
            if input_tx.try_send(input).is_err() && input_tx.is_closed() {
                break;
            }
        }
    };
    let writer_ref = &writer;
    let forward_output = async move {
        while let Some(frame) = output_rx.recv().await {
            if writer_ref.data_bytes(frame).await.is_err() {
                break;
            }
        }
    };
    // The UI ends when the user quits (its output queue closes) or the
    // client goes away (the input queue closes, which the UI notices; its
    // output queue is gone by then too, so it cannot wait on it forever).
    tokio::select! {
        _ = forward_input => {}
        _ = forward_output => {}
    }
    let status = ui.await.unwrap_or(1);
    let _ = writer.exit_status(status).await;
    let _ = writer.eof().await;
    let _ = writer.close().await;
}
