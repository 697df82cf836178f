//! Files only the server's own user may read: the local data directory holds password hashes,
//! sealed TOTP secrets, the signing key and mail with reset links and sign-in codes. Every
//! directory is created `0700` and every file `0600`, whatever the umask.

use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::Path;

/// Creates `dir` (and its missing parents) as `0700`; an existing `dir` is narrowed to `0700`
/// (a symbolic link is left as it is: what it points to is not ours to change).
pub fn create_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    if std::fs::symlink_metadata(dir)?.file_type().is_symlink() {
        return Ok(());
    }
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
}

/// Narrows an existing file to `0600` (for files another library creates, such as the database).
pub fn restrict(file: &Path) -> std::io::Result<()> {
    std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o600))
}

/// Writes `bytes` to `path` as a `0600` file under a temporary name, then renames it into
/// place: a reader never sees half a file.
pub async fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let name = path.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default();
    let temporary = path.with_file_name(format!(".{name}.{}.tmp", uuid::Uuid::new_v4().simple()));
    let written = async {
        let mut file = tokio::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&temporary).await?;
        tokio::io::AsyncWriteExt::write_all(&mut file, bytes).await?;
        file.sync_all().await?;
        tokio::fs::rename(&temporary, path).await
    }
    .await;
    if written.is_err() {
        let _ = tokio::fs::remove_file(&temporary).await;
    }
    written
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[tokio::test]
    async fn directories_are_0700_and_files_0600_whatever_existed() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("data");
        std::fs::DirBuilder::new().mode(0o755).create(&dir).unwrap();
        create_dir(&dir.join("outbox")).unwrap();
        create_dir(&dir).unwrap();
        assert_eq!((mode(&dir), mode(&dir.join("outbox"))), (0o700, 0o700));
        let file = dir.join("outbox/a.eml");
        write_atomically(&file, b"hello").await.unwrap();
        assert_eq!(mode(&file), 0o600);
        assert_eq!(std::fs::read(&file).unwrap(), b"hello");
        assert_eq!(std::fs::read_dir(dir.join("outbox")).unwrap().count(), 1, "no temporary file is left");
    }
}
