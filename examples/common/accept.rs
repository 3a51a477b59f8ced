//! The SSH client handler the load clients share: benchmarks talk to a
//! server they just started, so any host key is accepted.

use russh::client;

pub struct Accept;

impl client::Handler for Accept {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        _key: &russh::keys::PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        Ok(true)
    }
}
