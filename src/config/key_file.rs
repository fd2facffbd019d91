//! Who may read the private key file: the rule PostgreSQL applies to its TLS key, which works on
//! Kubernetes and Debian alike.
//!
//! A key file owned by the exporter's own user must be private to it (0600/0400). One owned by
//! root may also be readable by a group the exporter is in (0640/0440): that is how the kubelet
//! mounts a Secret with `fsGroup`, and how Debian shares keys through a group. Anything others
//! can read, or a group can write, is refused; so is a file owned by another user, and a
//! root-owned file the exporter cannot read at all, with the mount that would make it readable.

/// The facts the rule looks at: the file's owner, group and mode, and who the process is.
#[derive(Debug, Clone, Copy)]
pub struct KeyFileAccess {
    /// Permission bits (`st_mode & 0o777`).
    pub mode: u32,
    /// The file's owner uid.
    pub owner: u32,
    /// The file's group gid.
    pub group: u32,
    /// The process's effective uid.
    pub euid: u32,
    /// Whether the process is in the file's group (effective or supplementary).
    pub in_group: bool,
}

/// Why a key file is refused, and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// What is wrong, naming `path`.
    pub problem: String,
    /// The fix.
    pub fix: String,
}

impl KeyFileAccess {
    /// Checks the rule; `path` only appears in the messages.
    pub fn check(&self, path: &str) -> Result<(), Refusal> {
        let Self {
            mode,
            owner,
            group,
            euid,
            in_group,
        } = *self;
        let refuse = |problem: String, fix: String| Err(Refusal { problem, fix });
        if mode & 0o007 != 0 {
            return refuse(
                format!("{path} is accessible by others (mode {mode:o})"),
                format!(
                    "chmod 600 {path} (or 440 for a root-owned file shared with the exporter's group)"
                ),
            );
        }
        if owner == 0 {
            if mode & 0o030 != 0 {
                return refuse(
                    format!("{path} is writable by its group (mode {mode:o})"),
                    format!("chmod 440 {path}"),
                );
            }
            let readable = euid == 0 || (mode & 0o040 != 0 && in_group);
            if !readable {
                return refuse(
                    format!(
                        "{path} is owned by root (group {group}, mode {mode:o}) and the exporter \
                         (uid {euid}) is not allowed to read it"
                    ),
                    "on Kubernetes set the pod's securityContext.fsGroup to the exporter's group \
                     (runAsGroup, 65532 in the shipped manifests) and the Secret volume's \
                     defaultMode to 0440; elsewhere chown root:<a group of the exporter's> and \
                     chmod 440"
                        .into(),
                );
            }
            return Ok(());
        }
        if owner != euid {
            return refuse(
                format!(
                    "{path} is owned by uid {owner}, neither the exporter's user (uid {euid}) nor root"
                ),
                format!(
                    "chown it to uid {euid} with chmod 600, or to root with a group of the \
                     exporter's and chmod 440"
                ),
            );
        }
        if mode & 0o070 != 0 {
            return refuse(
                format!("{path} is accessible by its group (mode {mode:o})"),
                format!("chmod 600 {path} (or 400)"),
            );
        }
        Ok(())
    }

    /// The facts for `metadata` as seen by this process.
    #[cfg(unix)]
    pub fn of(metadata: &std::fs::Metadata) -> Self {
        use std::os::unix::fs::MetadataExt;
        let group = metadata.gid();
        Self {
            mode: metadata.mode() & 0o777,
            owner: metadata.uid(),
            group,
            euid: rustix::process::geteuid().as_raw(),
            in_group: rustix::process::getegid().as_raw() == group
                || rustix::process::getgroups()
                    .is_ok_and(|groups| groups.iter().any(|g| g.as_raw() == group)),
        }
    }
}

use std::path::Path;

use super::{invalid, ConfigError};

/// Refuses a key file that [`KeyFileAccess`] does not admit, before reading it.
pub(super) fn check_key_file_access(section: &str, path: &Path) -> Result<(), ConfigError> {
    check_secret_file(&format!("{section}.private_key_file"), path)
}

/// Refuses a file of secrets at config key `key` that [`KeyFileAccess`] does not admit.
#[cfg(unix)]
pub(crate) fn check_secret_file(key: &str, path: &Path) -> Result<(), ConfigError> {
    let key = key.to_string();
    let metadata = std::fs::metadata(path).map_err(|e| {
        invalid(
            key.clone(),
            format!("cannot read {}: {e}", path.display()),
            "point it at a readable file holding only the private key",
        )
    })?;
    KeyFileAccess::of(&metadata)
        .check(&path.display().to_string())
        .map_err(|refusal| invalid(key, refusal.problem, refusal.fix))
}

#[cfg(not(unix))]
pub(crate) fn check_secret_file(_key: &str, _path: &Path) -> Result<(), ConfigError> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(mode: u32, owner: u32, group: u32, in_group: bool) -> KeyFileAccess {
        KeyFileAccess {
            mode,
            owner,
            group,
            euid: 65532,
            in_group,
        }
    }

    #[test]
    fn admits_private_own_files_and_root_files_shared_with_our_group() {
        for mode in [0o600, 0o400] {
            assert_eq!(facts(mode, 65532, 65532, true).check("k"), Ok(()));
        }
        for mode in [0o640, 0o440] {
            assert_eq!(facts(mode, 0, 65532, true).check("k"), Ok(()));
        }
    }

    #[test]
    fn refuses_everything_else_with_the_fix() {
        let cases = [
            (facts(0o644, 65532, 65532, true), "others", "chmod 600"),
            (
                facts(0o640, 65532, 65532, true),
                "by its group",
                "chmod 600",
            ),
            (
                facts(0o660, 0, 65532, true),
                "writable by its group",
                "chmod 440",
            ),
            (facts(0o400, 0, 0, false), "not allowed to read", "fsGroup"),
            (
                facts(0o440, 0, 1234, false),
                "not allowed to read",
                "fsGroup",
            ),
            (
                facts(0o400, 1000, 1000, false),
                "owned by uid 1000",
                "chown",
            ),
        ];
        for (access, problem, fix) in cases {
            let refusal = access.check("k").unwrap_err();
            assert!(refusal.problem.contains(problem), "{access:?}: {refusal:?}");
            assert!(refusal.fix.contains(fix), "{access:?}: {refusal:?}");
        }
    }

    #[test]
    fn root_reads_a_root_owned_file_without_being_in_its_group() {
        let access = KeyFileAccess {
            euid: 0,
            ..facts(0o400, 0, 0, false)
        };
        assert_eq!(access.check("k"), Ok(()));
    }
}
