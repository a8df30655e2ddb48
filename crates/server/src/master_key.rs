//! The master key that encrypts private signing keys at rest: from
//! `TRUSEC_MASTER_KEY` (64 hex characters), or generated once into a file
//! readable only by its owner.

use secrecy::{ExposeSecret, SecretBox};
use std::io::Write;
use std::path::Path;

pub const KEY_LEN: usize = 32;

pub type MasterKey = SecretBox<[u8; KEY_LEN]>;

#[derive(Debug, thiserror::Error)]
pub enum MasterKeyError {
    #[error("must be {} hex characters (32 bytes)", KEY_LEN * 2)]
    Malformed,
    #[error("cannot read or create {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot generate a key: {0}")]
    Random(#[from] trusec_storage::secrets::SecretError),
    #[error("{path} is readable by other users (mode {mode:o}); run chmod 600 on it")]
    TooOpen { path: String, mode: u32 },
}

/// Parses a hex-encoded key.
///
/// # Errors
/// When it is not exactly 64 hex characters.
pub fn parse(text: &str) -> Result<MasterKey, MasterKeyError> {
    let bytes = hex_decode(text.trim()).ok_or(MasterKeyError::Malformed)?;
    let key: [u8; KEY_LEN] = bytes.try_into().map_err(|_| MasterKeyError::Malformed)?;
    Ok(SecretBox::new(Box::new(key)))
}

fn hex_decode(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || !s.is_ascii() {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| s.get(i..i + 2).and_then(|b| u8::from_str_radix(b, 16).ok()))
        .collect()
}

/// Reads the key file, or creates it (mode 0600) with a fresh random key.
///
/// # Errors
/// When the file is unreadable, malformed, or cannot be created.
pub fn load_or_create(path: &Path) -> Result<MasterKey, MasterKeyError> {
    let io = |source| MasterKeyError::Io {
        path: path.display().to_string(),
        source,
    };
    match std::fs::read_to_string(path) {
        Ok(text) => {
            refuse_if_shared(path)?;
            parse(&text)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(io)?;
            }
            let mut key = [0u8; KEY_LEN];
            trusec_storage::secrets::random_bytes(&mut key)?;
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let mut file = options.open(path).map_err(io)?;
            let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
            file.write_all(format!("{hex}\n").as_bytes()).map_err(io)?;
            file.sync_all().map_err(io)?;
            Ok(SecretBox::new(Box::new(key)))
        }
        Err(e) => Err(io(e)),
    }
}

/// Reads the key file, which must exist (commands that only read must not
/// mint a key nothing else uses).
///
/// # Errors
/// When the file is missing, unreadable, shared or malformed.
pub fn load(path: &Path) -> Result<MasterKey, MasterKeyError> {
    let text = std::fs::read_to_string(path).map_err(|source| MasterKeyError::Io {
        path: path.display().to_string(),
        source,
    })?;
    refuse_if_shared(path)?;
    parse(&text)
}

/// A key file anyone but its owner can read is a key anyone on the host
/// may have copied: refuse to start rather than use it.
fn refuse_if_shared(path: &Path) -> Result<(), MasterKeyError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)
            .map_err(|source| MasterKeyError::Io {
                path: path.display().to_string(),
                source,
            })?
            .permissions()
            .mode()
            & 0o777;
        if mode & 0o077 != 0 {
            return Err(MasterKeyError::TooOpen {
                path: path.display().to_string(),
                mode,
            });
        }
    }
    Ok(())
}

/// Makes a fresh random key.
///
/// # Errors
/// When the OS CSPRNG fails.
pub fn generate() -> Result<MasterKey, MasterKeyError> {
    let mut key = [0u8; KEY_LEN];
    trusec_storage::secrets::random_bytes(&mut key)?;
    Ok(SecretBox::new(Box::new(key)))
}

/// The key as 64 lower-case hex characters.
pub fn to_hex(key: &MasterKey) -> String {
    key.expose_secret()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Replaces the key file with `key`, atomically: a temporary file (mode
/// 0600) in the same directory, synced, then renamed over the old one, so
/// a crash leaves either the old key or the new one, never half of one.
///
/// # Errors
/// When the file cannot be written or renamed.
pub fn replace(path: &Path, key: &MasterKey) -> Result<(), MasterKeyError> {
    let io = |source| MasterKeyError::Io {
        path: path.display().to_string(),
        source,
    };
    let mut tmp_name = path.as_os_str().to_owned();
    tmp_name.push(".new");
    let tmp = std::path::PathBuf::from(tmp_name);
    // A leftover of an interrupted rotation holds no key anyone uses.
    match std::fs::remove_file(&tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(e)),
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&tmp).map_err(io)?;
    file.write_all(format!("{}\n", to_hex(key)).as_bytes())
        .map_err(io)?;
    file.sync_all().map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io)?;
    }
    Ok(())
}

/// Whether two keys are the same (tests).
pub fn same(a: &MasterKey, b: &MasterKey) -> bool {
    trusec_storage::secrets::constant_time_eq(a.expose_secret(), b.expose_secret())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_once_then_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data/master.key");
        let first = load_or_create(&path).unwrap();
        let second = load_or_create(&path).unwrap();
        assert!(same(&first, &second));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[cfg(unix)]
    #[test]
    fn a_key_file_others_can_read_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        load_or_create(&path).unwrap();
        for mode in [0o640, 0o604, 0o644] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            assert!(
                matches!(load_or_create(&path), Err(MasterKeyError::TooOpen { .. })),
                "{mode:o}"
            );
        }
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o400)).unwrap();
        assert!(load_or_create(&path).is_ok());
    }

    #[test]
    fn replace_swaps_the_file_for_the_new_key_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        load_or_create(&path).unwrap();
        let new = generate().unwrap();
        replace(&path, &new).unwrap();
        assert!(same(&load(&path).unwrap(), &new));
        assert!(!dir.path().join("master.key.new").exists());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn rejects_malformed_keys() {
        assert!(parse("abcd").is_err());
        assert!(parse(&"zz".repeat(32)).is_err());
        assert!(parse(&"ab".repeat(32)).is_ok());
    }
}
