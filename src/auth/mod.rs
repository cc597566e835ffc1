//! Authentication: passwords (argon2id), TOTP (totp-rs), recovery codes, one-time links and the
//! throttling of failed attempts. No HTTP types here; `web::auth` maps these onto pages.

pub mod invitation;
pub mod link;
pub mod passkey;
pub mod password;
pub mod recovery;
pub mod session;
pub mod sign_in;
pub mod stage;
pub mod throttle;
pub mod totp;

pub use password::{NewPassword, PasswordError, PasswordHasher};
pub use recovery::{RecoveryCode, RecoveryCodeKey};
pub use stage::{SecondFactorFailure, link_applies, may_enrol, second_factor_locked, stage_holds};
pub use throttle::{Throttle, ThrottleKey};
pub use totp::{TotpCode, TotpSeed, TotpVault};
