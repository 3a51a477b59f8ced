//! One writer of a name at a time: an upload, an in-place change or a
//! rename that seals a file anew holds a claim on its target name in the
//! database (`upload_claims`) from its start until its commit, which
//! releases it in the same transaction. A second writer of the name — on
//! this session, another one, or another node — is refused at its start,
//! so two writers never both tell their clients "stored" (and hand out two
//! keys of which one opens nothing).
//!
//! A claim lives [`CLAIM_SECONDS`] and a task renews it every third of that
//! while its writer lives; a writer whose node died frees its names when
//! they expire. Dropping a claim releases it in the background.

use std::time::Duration;

use tokio::task::JoinHandle;

use crate::core::{Core, FilesError, Who};
use crate::db::Db;
use crate::text::time::unix_now;

/// How long a claim holds without being renewed: a name stays blocked
/// this long after its writer's node died.
const CLAIM_SECONDS: i64 = 60;

/// A name held for one writer.
pub(crate) struct NameClaim {
    db: Db,
    account_id: i64,
    name: String,
    token: String,
    renewer: JoinHandle<()>,
    /// Released by a commit already: nothing for `Drop` to do.
    committed: bool,
}

impl NameClaim {
    /// The token a commit releases the claim with.
    pub(crate) fn token(&self) -> &str {
        &self.token
    }

    /// The commit released the claim with its own transaction.
    pub(crate) fn committed(mut self) {
        self.committed = true;
    }
}

impl Drop for NameClaim {
    fn drop(&mut self) {
        self.renewer.abort();
        if self.committed {
            return;
        }
        let (db, account_id, name, token) = (
            self.db.clone(),
            self.account_id,
            std::mem::take(&mut self.name),
            std::mem::take(&mut self.token),
        );
        // Without a runtime (the process is ending) the claim expires.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if let Err(e) = db.release_claim(account_id, &name, &token).await {
                    tracing::warn!(account_id, error = %e, "a name claim is left to expire");
                }
            });
        }
    }
}

impl Core {
    /// Claims `name` for a writer of the account, or says who holds it.
    pub(crate) async fn claim_name(&self, who: &Who, name: &str) -> Result<NameClaim, FilesError> {
        let token = hex::encode(rand::random::<[u8; 16]>());
        let now = unix_now();
        let claimed = self
            .db
            .claim_name(who.account_id, name, &token, now, now + CLAIM_SECONDS)
            .await?;
        if !claimed {
            return Err(FilesError::BeingWritten {
                name: name.to_string(),
            });
        }
        let renewer = tokio::spawn(renew(
            self.db.clone(),
            who.account_id,
            name.to_string(),
            token.clone(),
        ));
        Ok(NameClaim {
            db: self.db.clone(),
            account_id: who.account_id,
            name: name.to_string(),
            token,
            renewer,
            committed: false,
        })
    }

    /// Refuses a change of `name` by anything but its writer while a
    /// writer holds it (a rename onto it would be overwritten).
    pub(crate) async fn check_not_claimed(&self, who: &Who, name: &str) -> Result<(), FilesError> {
        if self
            .db
            .name_claimed(who.account_id, name, unix_now())
            .await?
        {
            return Err(FilesError::BeingWritten {
                name: name.to_string(),
            });
        }
        Ok(())
    }
}

/// Keeps a claim alive until aborted.
async fn renew(db: Db, account_id: i64, name: String, token: String) {
    let period = Duration::from_secs((CLAIM_SECONDS / 3) as u64);
    loop {
        tokio::time::sleep(period).await;
        match db
            .renew_claim(account_id, &name, &token, unix_now() + CLAIM_SECONDS)
            .await
        {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(account_id, "a name claim expired before its writer ended");
                return;
            }
            // A database that is away now may answer at the next round.
            Err(e) => tracing::warn!(account_id, error = %e, "cannot renew a name claim"),
        }
    }
}
