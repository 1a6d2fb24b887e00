//! Argon2id password hashes: made by `natter hash-password`, checked off the hub task.

use argon2::{Argon2, PasswordHash, PasswordHasher, PasswordVerifier};
use password_hash::rand_core::OsRng;
use password_hash::SaltString;

/// Hashes `password` with Argon2id and a fresh random salt, as a PHC string
/// (`$argon2id$v=19$m=...`): what the configuration's `[[oper]] password_hash` takes.
/// Uses the argon2 crate's default cost, which OWASP recommends for interactive logins.
pub fn hash_password(password: &str) -> Result<String, String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| format!("could not hash the password: {e}"))
}

/// Whether `password` matches the PHC `hash`. Takes milliseconds by design, so the
/// server calls it on a blocking thread, never on the hub task. A malformed hash
/// matches nothing.
pub fn verify_password(password: &str, hash: &str) -> bool {
    match PasswordHash::new(hash) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// Checks at start-up that `hash` is an Argon2id PHC string, so that a typo in the
/// configuration is reported then and not as a failed OPER later.
pub fn check_hash(hash: &str) -> Result<(), String> {
    let parsed = PasswordHash::new(hash).map_err(|e| format!("not a PHC hash string ({e})"))?;
    if parsed.algorithm.as_str() != "argon2id" {
        return Err(format!(
            "the hash uses '{}', but natter takes only argon2id",
            parsed.algorithm
        ));
    }
    if parsed.hash.is_none() || parsed.salt.is_none() {
        return Err("the hash has no salt or no hash value".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_its_password_and_nothing_else() {
        let hash = hash_password("hunter2").expect("hashing works");
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert_eq!(check_hash(&hash), Ok(()));
        assert!(verify_password("hunter2", &hash));
        assert!(!verify_password("hunter3", &hash));
    }

    #[test]
    fn malformed_hashes_are_reported_and_match_nothing() {
        assert!(check_hash("hunter2").is_err());
        assert!(!verify_password("hunter2", "hunter2"));
        let e = check_hash("$argon2i$v=19$m=16,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo")
            .expect_err("argon2i is refused");
        assert!(e.contains("only argon2id"), "{e}");
    }
}
