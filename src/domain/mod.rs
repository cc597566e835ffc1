//! Pure rules and types of the portal: no I/O, no HTTP, no SQL.
//!
//! Every user-supplied value with rules is a type with `parse(..) -> Result<Self, Error>`
//! ("parse, don't validate"), so handlers and the store never re-check what a type guarantees.

pub mod application;
pub mod base_url;
pub mod cipher;
pub mod clock;
pub mod email;
pub mod failure_window;
pub mod leak;
pub mod link;
pub mod next_path;
pub mod organisation;
pub mod outgoing_email;
pub mod paging;
pub mod reminder;
pub mod secret;
pub mod secret_value;
pub mod text;
pub mod throttle;
pub mod webhook;

pub use application::{Api, ApplicationKind, ApplicationName, Audience, ClientId, Environment, ResourceId};
pub use base_url::{BaseUrl, BaseUrlError};
pub use cipher::MasterKey;
pub use clock::{Clock, ManualClock, SystemClock};
pub use email::EmailAddress;
pub use failure_window::{FailureWindow, ThrottleVerdict, address_bucket};
pub use link::{LinkPurpose, LinkToken};
pub use next_path::NextPath;
pub use organisation::{CountryCode, OrganisationCode, OrganisationRef};
pub use outgoing_email::{EmailKind, NewEmail};
pub use paging::{PageNumber, parse_date};
pub use secret::{DaysLeft, ExpiryDate, SecretName};
pub use secret_value::{Hint, PlainSecret, SecretFormat, SecretHash, Shape};
