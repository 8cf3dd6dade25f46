//! Resolving `transform.user` (`user[:group]` or `uid[:gid]`) against the host's passwd and
//! group databases.

use nix::unistd::{Gid, Group, Uid, User};
use pipeline_core::executor::ExecutorError;

/// A resolved identity to run user code as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RunAs {
    pub(crate) uid: Uid,
    pub(crate) gid: Gid,
}

fn invalid(message: String) -> ExecutorError {
    ExecutorError::InvalidTask {
        field: "transform.user".into(),
        message,
    }
}

/// Resolves `spec`. A name must exist on the host; a number is used as is. Without a group,
/// the user's primary group (from passwd) is used, or the uid's number when the uid has no
/// passwd entry. Running as anyone but ourselves needs root.
pub(crate) fn resolve(spec: &str) -> Result<RunAs, ExecutorError> {
    let (user_part, group_part) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    if user_part.is_empty() || group_part == Some("") {
        return Err(invalid(format!(
            "{spec:?} is not `user[:group]` or `uid[:gid]`"
        )));
    }
    let lookup = |r: nix::Result<Option<User>>| {
        r.map_err(|e| invalid(format!("looking up user {user_part:?}: {e}")))
    };
    let (uid, primary) = match user_part.parse::<u32>() {
        Ok(n) => {
            let uid = Uid::from_raw(n);
            let primary = lookup(User::from_uid(uid))?.map(|u| u.gid);
            (uid, primary.unwrap_or(Gid::from_raw(n)))
        }
        Err(_) => match lookup(User::from_name(user_part))? {
            Some(u) => (u.uid, u.gid),
            None => {
                return Err(invalid(format!(
                    "user {user_part:?} does not exist on this host (no passwd entry)"
                )));
            }
        },
    };
    let gid = match group_part {
        None => primary,
        Some(g) => match g.parse::<u32>() {
            Ok(n) => Gid::from_raw(n),
            Err(_) => match Group::from_name(g) {
                Ok(Some(grp)) => grp.gid,
                Ok(None) => {
                    return Err(invalid(format!(
                        "group {g:?} does not exist on this host (no group entry)"
                    )));
                }
                Err(e) => return Err(invalid(format!("looking up group {g:?}: {e}"))),
            },
        },
    };
    let me = Uid::effective();
    if !me.is_root() && (uid != me || gid != Gid::effective()) {
        return Err(invalid(format!(
            "running as {spec:?} needs root; the process executor runs as uid {me}"
        )));
    }
    Ok(RunAs { uid, gid })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_names_and_numbers() {
        let root = resolve("root").map_err(|e| e.to_string());
        assert_eq!(
            root,
            Ok(RunAs {
                uid: Uid::from_raw(0),
                gid: Gid::from_raw(0)
            })
        );
        if Uid::effective().is_root() {
            let r = resolve("12345:54321").map_err(|e| e.to_string());
            assert_eq!(
                r,
                Ok(RunAs {
                    uid: Uid::from_raw(12345),
                    gid: Gid::from_raw(54321)
                })
            );
        }
        for bad in [
            "",
            ":",
            "root:",
            "no-such-user-xyz",
            "root:no-such-group-xyz",
        ] {
            let err = resolve(bad).expect_err(bad).to_string();
            assert!(err.starts_with("transform.user: "), "{err}");
        }
    }
}
