//! Folders: the account's tree, the same in every door. A folder is a row
//! in the database (`db/folders.rs`), so making, renaming or moving one of
//! any size is one update on every storage backend; blobs stay named by
//! file id. A file's path names its folder; a name in a folder is one file
//! or one folder, never both.
//!
//! A folder with a file being uploaded into it (on any node, through the
//! writers' claims) is neither moved nor removed until that upload ends;
//! and should one slip past (Redis away), the upload is refused at its
//! commit with a sentence, so no file is ever stored where no folder holds
//! it.

use std::sync::Arc;

use crate::cluster::events::Event;
use crate::core::names::{check_own, check_plain, shared_place, split_path, PathLimits};
use crate::core::{logged, Core, FileView, FilesError, Who};
use crate::db::{Action, FileRecord, FolderRecord, MakeFolder, MoveFolder, RemoveFolder};

/// What a path is in the account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Entry {
    File(FileRecord),
    /// A folder; the top is one with id 0 and path `""`.
    Folder(FolderRecord),
}

/// What one folder holds directly, as its owner sees it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FolderView {
    pub folders: Vec<FolderRecord>,
    pub files: Vec<FileView>,
}

/// What a removal of a folder with everything in it removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RemovedTree {
    pub files: usize,
    pub folders: u64,
}

impl Core {
    /// How long a new name and how deep a new path may be here.
    pub fn path_limits(&self) -> PathLimits {
        let limits = &self.config.limits;
        PathLimits {
            name_bytes: usize::try_from(limits.max_name_bytes).unwrap_or(usize::MAX),
            depth: usize::try_from(limits.max_folder_depth).unwrap_or(usize::MAX),
        }
    }

    /// What `path` is: a file, a folder, or nothing (`None`).
    pub async fn entry(&self, who: &Who, path: &str) -> Result<Option<Entry>, FilesError> {
        let result = async {
            if shared_place(path).is_some() {
                return self.shared_entry(who, path).await;
            }
            if let Some(file) = self.files.file_by_name(who.account_id, path).await? {
                return Ok(Some(Entry::File(file)));
            }
            let folder = self.db.folder(who.account_id, path).await?;
            Ok(folder.map(Entry::Folder))
        }
        .await;
        logged(who, "entry", result)
    }

    /// What the folder at `path` holds, its files with their state.
    pub async fn list_folder(&self, who: &Who, path: &str) -> Result<FolderView, FilesError> {
        let result = async {
            if shared_place(path).is_some() {
                return self.shared_listing(who, path).await;
            }
            let Some(listing) = self.db.list_folder(who.account_id, path).await? else {
                if self
                    .files
                    .file_by_name(who.account_id, path)
                    .await?
                    .is_some()
                {
                    return Err(FilesError::NotAFolder {
                        name: path.to_string(),
                    });
                }
                return Err(FilesError::NoSuchFolder {
                    path: path.to_string(),
                });
            };
            Ok(FolderView {
                folders: listing.folders,
                files: self.with_states(who, listing.files).await,
            })
        }
        .await;
        logged(who, "list folder", result)
    }

    /// Every folder of the account, by path.
    pub async fn folders(&self, who: &Who) -> Result<Vec<FolderRecord>, FilesError> {
        let result = async { Ok(self.db.folders(who.account_id).await?) }.await;
        logged(who, "folders", result)
    }

    /// Makes the folder `path`; with `parents`, the folders above it too,
    /// and one that exists already is no error (`mkdir -p`). Returns
    /// whether it made anything.
    pub async fn make_folder(
        &self,
        who: &Who,
        path: &str,
        parents: bool,
    ) -> Result<bool, FilesError> {
        let result = async {
            check_plain(path)?;
            self.path_limits().check_folder(path)?;
            let steps: Vec<&str> = if parents {
                path.match_indices('/')
                    .map(|(at, _)| &path[..at])
                    .chain([path])
                    .collect()
            } else {
                vec![path]
            };
            let mut made = false;
            for step in steps {
                let last = step.len() == path.len();
                match self.make_one(who, step).await? {
                    MakeFolder::Made => made = true,
                    MakeFolder::Exists if parents => {}
                    MakeFolder::Exists => {
                        return Err(FilesError::FolderExists {
                            name: path.to_string(),
                        })
                    }
                    MakeFolder::FileExists if last => {
                        return Err(FilesError::Exists);
                    }
                    MakeFolder::FileExists => {
                        return Err(FilesError::NotAFolder {
                            name: step.to_string(),
                        })
                    }
                    MakeFolder::NoParent => {
                        return Err(FilesError::NoSuchFolder {
                            path: split_path(step).0.to_string(),
                        })
                    }
                    MakeFolder::TooMany => {
                        return Err(FilesError::TooManyFolders {
                            limit: self.config.limits.account_max_folders,
                        })
                    }
                    MakeFolder::AccountClosed { deleted } => {
                        return Err(FilesError::AccountClosed { deleted })
                    }
                }
            }
            if made {
                self.events.publish(who.account_id, Event::FilesChanged);
            }
            Ok(made)
        }
        .await;
        logged(who, "make folder", result)
    }

    async fn make_one(&self, who: &Who, path: &str) -> Result<MakeFolder, FilesError> {
        let limit = self.config.limits.account_max_folders;
        let now = crate::text::time::unix_now();
        let made = self
            .db
            .make_folder(who.account_id, path, limit, now)
            .await?;
        if made == MakeFolder::Made {
            self.audit(who, Action::Mkdir, &format!("{path:?}")).await;
        }
        Ok(made)
    }

    /// Removes the empty folder `path`.
    pub async fn remove_folder(&self, who: &Who, path: &str) -> Result<(), FilesError> {
        let result = async {
            check_own(path)?;
            match self.db.remove_folder(who.account_id, path).await? {
                RemoveFolder::Removed => {}
                RemoveFolder::NotFound => return Err(self.not_a_folder(who, path).await),
                RemoveFolder::NotEmpty { files, folders } => {
                    return Err(FilesError::FolderNotEmpty {
                        name: path.to_string(),
                        files,
                        folders,
                    })
                }
            }
            self.events.publish(who.account_id, Event::FilesChanged);
            self.audit(who, Action::Rmdir, &format!("{path:?}")).await;
            Ok(())
        }
        .await;
        logged(who, "remove folder", result)
    }

    /// Removes the folder `path` with every file and folder in it, unless
    /// a file in it is being uploaded; the files' keys go with them.
    pub async fn remove_tree(&self, who: &Who, path: &str) -> Result<RemovedTree, FilesError> {
        let result = async {
            check_own(path)?;
            if self.claims.held_within(who.account_id, path).await {
                return Err(FilesError::UploadInside {
                    folder: path.to_string(),
                });
            }
            let Some(removed) = self.db.remove_tree(who.account_id, path).await? else {
                return Err(self.not_a_folder(who, path).await);
            };
            for file in &removed.files {
                self.keyring.forget_file(who.account_id, &file.id).await;
            }
            self.files.remove_blobs(&removed.files).await;
            self.events.publish(who.account_id, Event::FilesChanged);
            let summary = RemovedTree {
                files: removed.files.len(),
                folders: removed.folders,
            };
            self.audit(
                who,
                Action::Rmdir,
                &format!(
                    "{path:?} with {} files and {} folders in it",
                    summary.files,
                    summary.folders.saturating_sub(1)
                ),
            )
            .await;
            Ok(summary)
        }
        .await;
        logged(who, "remove tree", result)
    }

    /// Renames or moves what `from` is, a file or a folder, to `to`; an
    /// existing target is refused. A folder moves with everything in it,
    /// in one update, never into itself.
    pub async fn move_path(
        self: &Arc<Self>,
        who: &Who,
        from: &str,
        to: &str,
    ) -> Result<(), FilesError> {
        match self.entry(who, from).await? {
            Some(Entry::Folder(_)) => self.move_folder(who, from, to).await,
            Some(Entry::File(_)) => self.rename(who, from, to).await,
            None => Err(FilesError::NotFound),
        }
    }

    /// Moves the folder `from` to `to`, unless a file in it is being
    /// uploaded.
    pub async fn move_folder(&self, who: &Who, from: &str, to: &str) -> Result<(), FilesError> {
        let result = async {
            check_own(from)?;
            check_plain(to)?;
            self.path_limits().check_folder(to)?;
            if self.claims.held_within(who.account_id, from).await {
                return Err(FilesError::UploadInside {
                    folder: from.to_string(),
                });
            }
            match self.db.move_folder(who.account_id, from, to).await? {
                MoveFolder::Moved => {}
                MoveFolder::NotFound => return Err(self.not_a_folder(who, from).await),
                MoveFolder::NoParent => {
                    return Err(FilesError::NoSuchFolder {
                        path: split_path(to).0.to_string(),
                    })
                }
                MoveFolder::TargetExists => return Err(self.taken(who, to).await),
                MoveFolder::IntoItself => {
                    return Err(FilesError::IntoItself {
                        from: from.to_string(),
                        to: to.to_string(),
                    })
                }
                MoveFolder::AccountClosed { deleted } => {
                    return Err(FilesError::AccountClosed { deleted })
                }
            }
            self.events.publish(who.account_id, Event::FilesChanged);
            self.audit(who, Action::Move, &format!("{from:?} -> {to:?}"))
                .await;
            Ok(())
        }
        .await;
        logged(who, "move folder", result)
    }

    /// Why `path` could not be taken as a folder: it is a file, or nothing.
    async fn not_a_folder(&self, who: &Who, path: &str) -> FilesError {
        match self.files.file_by_name(who.account_id, path).await {
            Ok(Some(_)) => FilesError::NotAFolder {
                name: path.to_string(),
            },
            Ok(None) => FilesError::NoSuchFolder {
                path: path.to_string(),
            },
            Err(e) => e,
        }
    }

    /// Why the name `path` is taken: by a folder or by a file.
    async fn taken(&self, who: &Who, path: &str) -> FilesError {
        match self.db.folder_exists(who.account_id, path).await {
            Ok(true) => FilesError::FolderExists {
                name: path.to_string(),
            },
            Ok(false) => FilesError::Exists,
            Err(e) => e.into(),
        }
    }

    /// Refuses a new file at `path` whose folder is missing or which a
    /// folder's name already takes.
    pub(crate) async fn check_file_place(&self, who: &Who, path: &str) -> Result<(), FilesError> {
        self.path_limits().check_file(path)?;
        let (folder, _) = split_path(path);
        if !self.db.folder_exists(who.account_id, folder).await? {
            return Err(self.not_a_folder(who, folder).await);
        }
        if self.db.folder_exists(who.account_id, path).await? {
            return Err(FilesError::IsAFolder {
                name: path.to_string(),
            });
        }
        Ok(())
    }
}
