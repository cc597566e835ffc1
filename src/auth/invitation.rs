//! Inviting a user: the one path for the command line, the demo loader, the first admin and the
//! admin console.

use chrono::{DateTime, Utc};

use crate::domain::{BaseUrl, LinkPurpose};
use crate::store::{Actor, NewUser, Store, StoreError, User};

/// An invitation that was stored and queued.
pub struct Invited {
    /// The user (new, or existing and not yet active).
    pub user: User,
    /// Whether the user was created now.
    pub created: bool,
    /// The absolute one-time link, for the command line's output only.
    pub link: String,
}

impl std::fmt::Debug for Invited {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Invited").field("user", &self.user).field("created", &self.created).finish_non_exhaustive()
    }
}

/// Invites `new`: creates the user (or, for an existing email not yet active, retires the older
/// link), stores a new link valid 72 hours (hashed), and queues the invitation email, in one
/// transaction.
///
/// # Errors
/// [`StoreError`], including the conflicts of [`Store::invite_user`].
pub async fn invite_user(
    store: &Store,
    base_url: &BaseUrl,
    new: &NewUser,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<Invited, StoreError> {
    let link = super::link::issue(LinkPurpose::Invitation, base_url, &new.email, &new.display_name, now);
    let (user, created) = store.invite_user(new, &link.stored, &link.email, actor, now).await?;
    Ok(Invited { user, created, link: link.url })
}
