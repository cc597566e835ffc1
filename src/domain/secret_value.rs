//! A client secret's value: its two formats, its checksum, its hint and its hash (DESIGN.md
//! sections 3, 6 and 7).
//!
//! - **v1** (before issue 15): 40 characters of `[A-Za-z0-9]`; the hint is the first three.
//! - **v2** (every new secret): `wmdacs_` + R + C, 45 characters. R is 32 characters of
//!   `[0-9A-Za-z]` from the OS CSPRNG (about 190 bits); C is the CRC-32 (IEEE) of R's ASCII bytes
//!   in base62 (`0-9A-Za-z`, most significant digit first), left-padded with `0` to 6 characters.
//!   The prefix lets secret scanners find a leaked value; the checksum lets them (and the token
//!   endpoint) tell a real value from a look-alike offline. The hint is the first three characters
//!   of R, shown with the prefix.

use std::fmt;

use rand::distr::{Alphanumeric, Distribution};
use rand::{TryRngCore, rngs::OsRng};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

/// Length of a v1 client secret value.
pub const SECRET_LENGTH: usize = 40;
/// Length of a hint's characters (the prefix of a v2 hint not counted).
pub const HINT_LENGTH: usize = 3;
/// The prefix of every v2 client secret (DESIGN.md section 7).
pub const V2_PREFIX: &str = "wmdacs_";
/// Random characters in a v2 secret (R).
pub const V2_RANDOM_LENGTH: usize = 32;
/// Characters of a v2 secret's checksum (C).
pub const V2_CHECKSUM_LENGTH: usize = 6;
/// Length of a v2 secret: 7 + 32 + 6 = 45 characters.
pub const V2_LENGTH: usize = V2_PREFIX.len() + V2_RANDOM_LENGTH + V2_CHECKSUM_LENGTH;

/// The base62 digits, in value order (DESIGN.md section 7: `0-9A-Za-z`).
const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// `n` in base62, most significant digit first, left-padded with `0` to 6 digits. Every `u32`
/// fits: 62^6 > 2^32, and 2^32 - 1 is `4gfFC3`, so the first digit is always 0-4.
pub fn base62_6(mut n: u32) -> [u8; V2_CHECKSUM_LENGTH] {
    let mut digits = [b'0'; V2_CHECKSUM_LENGTH];
    for d in digits.iter_mut().rev() {
        *d = BASE62[(n % 62) as usize];
        n /= 62;
    }
    digits
}

/// The checksum C of a v2 secret's random part `random`: its CRC-32 (IEEE, as `crc32fast`
/// computes it) in base62, 6 characters ([`base62_6`]).
pub fn checksum(random: &str) -> [u8; V2_CHECKSUM_LENGTH] {
    base62_6(crc32fast::hash(random.as_bytes()))
}

/// Which format a stored secret's value has: the `value_format` column (1 or 2; an added column
/// whose default, 1, is what every secret made before v2 has).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SecretFormat {
    /// 40 alphanumerics, made before issue 15.
    #[default]
    V1,
    /// `wmdacs_` + 32 random + 6 checksum characters.
    V2,
}

impl SecretFormat {
    /// The format of a stored `value_format`; anything but 2 is v1 (the column's check allows
    /// only 1 and 2).
    pub fn from_stored(value_format: i32) -> Self {
        if value_format == 2 { Self::V2 } else { Self::V1 }
    }

    /// The `value_format` to store: 1 or 2.
    pub fn stored(self) -> i32 {
        match self {
            Self::V1 => 1,
            Self::V2 => 2,
        }
    }

    /// What the hint is shown after: the v2 prefix, or nothing for v1.
    pub fn prefix(self) -> &'static str {
        match self {
            Self::V1 => "",
            Self::V2 => V2_PREFIX,
        }
    }
}

/// What remains visible of a secret after creation: three characters (the seed guide's "first
/// three characters"; for v2 the first three of the random part, so they stay random and tell
/// secrets apart) and the format, which decides whether the prefix is shown.
///
/// `Display` gives the form for JSON, CSV, email and audit details (`wmdacs_Ab3`, or `Ab3` for
/// v1); [`Hint::shown`] the form for pages, with an ellipsis (`wmdacs_Ab3…`). A hint is not a
/// secret: 3 characters of a 190-bit value say nothing useful about the rest.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Hint {
    chars: String,
    format: SecretFormat,
}

impl Hint {
    /// A hint as stored: the `hint` column's three characters and the `value_format` column.
    pub fn new(chars: impl Into<String>, format: SecretFormat) -> Self {
        Self { chars: chars.into(), format }
    }

    /// A hint read from the store: the `hint` column and the `value_format` column.
    pub fn stored(chars: String, value_format: i32) -> Self {
        Self::new(chars, SecretFormat::from_stored(value_format))
    }

    /// The three characters, as the `hint` column keeps them.
    pub fn chars(&self) -> &str {
        &self.chars
    }

    /// The secret's format.
    pub fn format(&self) -> SecretFormat {
        self.format
    }

    /// The form for pages: `wmdacs_Ab3…` (v2) or `Ab3…` (v1).
    pub fn shown(&self) -> String {
        format!("{self}…")
    }
}

impl fmt::Display for Hint {
    /// `wmdacs_Ab3` (v2) or `Ab3` (v1): for JSON, CSV, email and audit details.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.format.prefix(), self.chars)
    }
}

impl serde::Serialize for Hint {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// What a presented value is by its shape alone, before any lookup (DESIGN.md section 7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// `wmdacs_`, 32 characters of the alphabet and their matching checksum.
    WellFormedV2,
    /// Starts with `wmdacs_` but has the wrong length, a character outside `[0-9A-Za-z]` or a
    /// checksum that does not match: refused as `invalid_client` without a query or a throttle
    /// count.
    MalformedV2,
    /// Anything else (a v1 value, or garbage): looked up like any secret.
    Other,
}

impl Shape {
    /// Why `value` is not a well-formed v2 secret, in words for the person who pasted it
    /// (`secret-portal secrets check`); `Ok` when it is one.
    ///
    /// # Errors
    /// The reason, one sentence without the value.
    pub fn explain(value: &str) -> Result<(), String> {
        let Some(rest) = value.strip_prefix(V2_PREFIX) else {
            return Err(format!(
                "it does not start with {V2_PREFIX} (a secret made before the current format, or not a portal secret)"
            ));
        };
        let want = V2_RANDOM_LENGTH + V2_CHECKSUM_LENGTH;
        if !rest.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err("it has a character other than 0-9, A-Z and a-z after the prefix".to_owned());
        }
        if rest.len() != want {
            return Err(format!("it has {} characters after {V2_PREFIX}; a client secret has {want}", rest.len()));
        }
        match Self::of(value) {
            Self::WellFormedV2 => Ok(()),
            _ => {
                Err("its checksum does not match: a character was changed or lost, or it is not a portal secret"
                    .to_owned())
            }
        }
    }

    /// The shape of `value`. Only the exact lower-case prefix makes a v2 value: `WMDACS_…` or
    /// `wmdacs…` without its `_` is [`Shape::Other`] (and no stored secret has that hash).
    pub fn of(value: &str) -> Self {
        let Some(rest) = value.strip_prefix(V2_PREFIX) else {
            return Self::Other;
        };
        let well_formed =
            rest.len() == V2_RANDOM_LENGTH + V2_CHECKSUM_LENGTH && rest.bytes().all(|b| b.is_ascii_alphanumeric()) && {
                let (random, sum) = rest.split_at(V2_RANDOM_LENGTH);
                checksum(random) == sum.as_bytes()
            };
        if well_formed { Self::WellFormedV2 } else { Self::MalformedV2 }
    }
}

/// A client secret's value, v2 when new ([`PlainSecret::generate`]), or whatever a client
/// presents ([`PlainSecret::presented`]).
///
/// It is shown once and never stored (DESIGN.md section 6): `Debug` is redacted, and there is no
/// `Display`; [`PlainSecret::expose`] is the one way to the text.
pub struct PlainSecret(SecretString);

impl PlainSecret {
    /// Draws a new v2 value (`wmdacs_` + 32 random characters + checksum) from the operating
    /// system's CSPRNG.
    pub fn generate() -> Self {
        // OsRng only fails when the OS has no entropy source at all; there is no secret to make
        // then, and panicking is the only honest answer.
        let mut rng = OsRng.unwrap_err();
        let random: String = Alphanumeric.sample_iter(&mut rng).take(V2_RANDOM_LENGTH).map(char::from).collect();
        let mut value = String::with_capacity(V2_LENGTH);
        value.push_str(V2_PREFIX);
        value.push_str(&random);
        value.extend(checksum(&random).iter().map(|&b| char::from(b)));
        Self(SecretString::from(value))
    }

    /// Draws a value of the format made before v2 (40 alphanumerics): for tests and tools that
    /// need a secret as it was issued before issue 15.
    pub fn generate_v1() -> Self {
        let mut rng = OsRng.unwrap_err();
        Self(SecretString::from(
            Alphanumeric.sample_iter(&mut rng).take(SECRET_LENGTH).map(char::from).collect::<String>(),
        ))
    }

    /// Wraps a value presented by a client (the token endpoint), whatever its shape.
    pub fn presented(value: &str) -> Self {
        Self(SecretString::from(value))
    }

    /// The value, for the one response that shows it and for the client's presentation.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    /// The value's shape ([`Shape::of`]).
    pub fn shape(&self) -> Shape {
        Shape::of(self.expose())
    }

    /// The hint: for a v2 value the first three characters after the prefix, otherwise the first
    /// three characters (seed guide: "only the first three characters (hint) will remain").
    pub fn hint(&self) -> Hint {
        match self.expose().strip_prefix(V2_PREFIX) {
            Some(random) => Hint::new(random.chars().take(HINT_LENGTH).collect::<String>(), SecretFormat::V2),
            None => Hint::new(self.expose().chars().take(HINT_LENGTH).collect::<String>(), SecretFormat::V1),
        }
    }

    /// SHA-256 of the whole value (prefix and checksum included); ASVS 5.0 6.5.2 allows a fast
    /// hash for secrets of 112 bits or more.
    pub fn hash(&self) -> SecretHash {
        SecretHash(Sha256::digest(self.expose().as_bytes()).into())
    }
}

impl fmt::Debug for PlainSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PlainSecret([REDACTED])")
    }
}

/// SHA-256 of a client secret's value, as stored (32 bytes).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SecretHash([u8; 32]);

impl SecretHash {
    /// The 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Wraps 32 bytes read from the store; `None` for any other length.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        bytes.try_into().ok().map(Self)
    }
}

impl fmt::Debug for SecretHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A prefix is enough to tell hashes apart in a test failure.
        write!(f, "SecretHash({}…)", hex::encode(&self.0[..4]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn text(digits: [u8; 6]) -> String {
        String::from_utf8(digits.to_vec()).unwrap()
    }

    #[test]
    fn base62_checksums_are_six_digits_most_significant_first() {
        // DESIGN.md section 7 and issue 15, point 1.
        assert_eq!(text(base62_6(0)), "000000");
        assert_eq!(text(base62_6(62)), "000010");
        assert_eq!(text(base62_6(62u32.pow(5) - 1)), "0zzzzz");
        assert_eq!(text(base62_6(62u32.pow(5))), "100000");
        assert_eq!(text(base62_6(u32::MAX)), "4gfFC3");
        // CRC-32/IEEE check value: "123456789" -> 0xCBF43926.
        assert_eq!(crc32fast::hash(b"123456789"), 0xCBF4_3926);
        assert_eq!(checksum("123456789"), base62_6(0xCBF4_3926));
    }

    #[test]
    fn new_secrets_are_v2_with_a_prefixed_hint_and_old_ones_keep_theirs() {
        let s = PlainSecret::generate();
        let v = s.expose();
        assert_eq!(v.len(), V2_LENGTH);
        assert!(v.starts_with("wmdacs_"));
        assert!(v[7..].bytes().all(|b| b.is_ascii_alphanumeric()));
        assert!(matches!(v.as_bytes()[V2_PREFIX.len() + V2_RANDOM_LENGTH], b'0'..=b'4'));
        assert_eq!(s.shape(), Shape::WellFormedV2);
        let hint = s.hint();
        assert_eq!(hint.chars(), &v[7..10]);
        assert_eq!(hint.format(), SecretFormat::V2);
        assert_eq!(hint.to_string(), format!("wmdacs_{}", &v[7..10]));
        assert_eq!(hint.shown(), format!("wmdacs_{}…", &v[7..10]));
        assert_eq!(serde_json::to_value(&hint).unwrap(), serde_json::json!(format!("wmdacs_{}", &v[7..10])));
        assert_ne!(v, PlainSecret::generate().expose());
        assert_eq!(format!("{s:?}"), "PlainSecret([REDACTED])");
        assert!(!format!("{:?}", s.hash()).contains(v));

        let old = PlainSecret::generate_v1();
        assert_eq!(old.expose().len(), SECRET_LENGTH);
        assert_eq!(old.shape(), Shape::Other);
        assert_eq!(old.hint(), Hint::new(&old.expose()[..3], SecretFormat::V1));
        assert_eq!(old.hint().shown(), format!("{}…", &old.expose()[..3]));
        assert_eq!(Hint::stored("aB3".into(), 1).to_string(), "aB3");
        assert_eq!(Hint::stored("aB3".into(), 2).to_string(), "wmdacs_aB3");
        // SHA-256 of "abc" (FIPS 180-2 appendix B.1).
        assert_eq!(
            hex::encode(PlainSecret::presented("abc").hash().as_bytes()),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn look_alikes_of_the_prefix_are_not_v2() {
        let v = PlainSecret::generate().expose().to_owned();
        for other in [v.replacen("wmdacs_", "WMDACS_", 1), v.replacen("wmdacs_", "wmdacs", 1), format!(" {v}")] {
            assert_eq!(Shape::of(&other), Shape::Other, "{other}");
        }
        for malformed in [
            "wmdacs_".to_owned(),
            v[..V2_LENGTH - 1].to_owned(),
            format!("{v}0"),
            format!("{}-{}", &v[..20], &v[21..]),
            format!("{}é{}", &v[..20], &v[22..]),
        ] {
            assert_eq!(Shape::of(&malformed), Shape::MalformedV2, "{malformed}");
        }
    }

    fn secret() -> impl Strategy<Value = String> {
        "[0-9A-Za-z]{32}".prop_map(|r| format!("{V2_PREFIX}{r}{}", text(checksum(&r))))
    }

    proptest! {
        #[test]
        fn every_generated_secret_and_hint_checks_out(_i in 0..50u8) {
            let s = PlainSecret::generate();
            prop_assert_eq!(s.shape(), Shape::WellFormedV2);
            prop_assert!(s.expose()[V2_PREFIX.len()..].starts_with(s.hint().chars()));
            prop_assert_eq!(PlainSecret::presented(s.expose()).hash(), s.hash());
            prop_assert_ne!(s.hash(), PlainSecret::generate().hash());
        }

        #[test]
        fn a_changed_character_fails_the_checksum(v in secret(), at in 7usize..V2_LENGTH, with in "[0-9A-Za-z]") {
            prop_assert_eq!(Shape::of(&v), Shape::WellFormedV2);
            let mut bytes = v.clone().into_bytes();
            let new = with.as_bytes()[0];
            prop_assume!(bytes[at] != new);
            bytes[at] = new;
            let changed = String::from_utf8(bytes).unwrap();
            // CRC-32 detects every single-character change within its 32 bits; a changed checksum
            // digit names another CRC.
            prop_assert_eq!(Shape::of(&changed), Shape::MalformedV2);
        }

        #[test]
        fn a_swap_of_two_different_characters_fails_the_checksum(v in secret(), i in 7usize..V2_LENGTH, j in 7usize..V2_LENGTH) {
            let mut bytes = v.clone().into_bytes();
            prop_assume!(bytes[i] != bytes[j]);
            bytes.swap(i, j);
            prop_assert_eq!(Shape::of(&String::from_utf8(bytes).unwrap()), Shape::MalformedV2);
        }

        #[test]
        fn a_wrong_length_or_prefix_is_never_well_formed(v in secret(), cut in 1usize..10, extra in "[0-9A-Za-z]{1,5}") {
            prop_assert_eq!(Shape::of(&v[..V2_LENGTH - cut]), Shape::MalformedV2);
            prop_assert_eq!(Shape::of(&format!("{v}{extra}")), Shape::MalformedV2);
            prop_assert_eq!(Shape::of(&format!("{}{}", &v[..20], &v[20 + cut.min(5)..])), Shape::MalformedV2);
            prop_assert_eq!(Shape::of(&v.to_uppercase()), Shape::Other);
            prop_assert_eq!(Shape::of(&v.replacen("wmdacs_", "WMDACS_", 1)), Shape::Other);
            prop_assert_eq!(Shape::of(&v.replacen('_', "", 1)), Shape::Other);
        }

        #[test]
        fn base62_round_trips(n in any::<u32>()) {
            let digits = base62_6(n);
            prop_assert!(matches!(digits[0], b'0'..=b'4'));
            let back = digits.iter().fold(0u64, |acc, d| acc * 62 + BASE62.iter().position(|b| b == d).unwrap() as u64);
            prop_assert_eq!(back, u64::from(n));
        }
    }
}
