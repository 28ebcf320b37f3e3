//! Signing keys: RS256 key pairs kept as PKCS#8 PEM files in `keys_dir`, one
//! file per `kid`, plus an `active` file naming the key that signs. Every
//! instance reads the same directory, so rotation on one is seen by all at the
//! next reload.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    sync::{Arc, Mutex, RwLock},
    time::{Duration, Instant, SystemTime},
};

use aws_lc_rs::{
    encoding::AsDer,
    rand::SystemRandom,
    rsa::{KeyPair, KeySize},
    signature::{KeyPair as _, RSA_PKCS1_SHA256},
};
use base64::{
    Engine,
    engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD},
};
use jsonwebtoken::{Algorithm, DecodingKey, Header};
use serde::Serialize;
use serde_json::{Value, json};

/// The least time between two reloads forced by a token naming a `kid` this
/// instance does not know: another instance may have rotated (README,
/// "Running several instances"), but a stream of garbage `kid`s must not turn
/// into a directory read per request.
const UNKNOWN_KID_RELOAD_INTERVAL: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("keys directory {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("key {kid}: {message}")]
    Invalid { kid: String, message: String },
}

/// One RS256 key, parsed once when the keys directory is read: signing and
/// verifying never re-parse or re-check the key material.
pub struct SigningKey {
    pub kid: String,
    /// The private key, parsed and checked once (jsonwebtoken's
    /// `EncodingKey` keeps DER bytes and re-parses them on every signature).
    signer: KeyPair,
    pub decoding: DecodingKey,
    jwk: Value,
}

impl SigningKey {
    /// A compact JWS (RFC 7515 §7.1) over `claims`: RS256, this key's `kid`
    /// and the given `typ`, byte-for-byte what `jsonwebtoken::encode` makes.
    pub fn sign_jwt<T: Serialize>(&self, typ: &str, claims: &T) -> String {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(self.kid.clone());
        header.typ = Some(typ.to_owned());
        let header = serde_json::to_vec(&header).expect("a header always serializes");
        let claims = serde_json::to_vec(claims).expect("claims are plain data");
        let mut jwt = String::with_capacity(
            (header.len() + claims.len() + self.signer.public_modulus_len()) * 4 / 3 + 8,
        );
        URL_SAFE_NO_PAD.encode_string(&header, &mut jwt);
        jwt.push('.');
        URL_SAFE_NO_PAD.encode_string(&claims, &mut jwt);
        let mut signature = vec![0; self.signer.public_modulus_len()];
        self.signer
            .sign(
                &RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                jwt.as_bytes(),
                &mut signature,
            )
            .expect("RS256 signing with a loaded key cannot fail");
        jwt.push('.');
        URL_SAFE_NO_PAD.encode_string(&signature, &mut jwt);
        jwt
    }
}

struct KeySet {
    active: Arc<SigningKey>,
    all: BTreeMap<String, Arc<SigningKey>>,
    stamp: Option<SystemTime>,
}

/// The keys this instance signs and verifies with.
pub struct Keys {
    dir: PathBuf,
    set: RwLock<KeySet>,
    /// When a token with an unknown `kid` last forced a reload; held while
    /// reloading, so concurrent callers wait for one read instead of each
    /// reading the directory.
    forced_reload: Mutex<Option<Instant>>,
    reload_interval: Duration,
}

impl Keys {
    /// Loads `dir`, creating it and a first key when there is none.
    pub fn load_or_create(dir: &Path) -> Result<Keys, KeyError> {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        if !dir.join("active").exists() {
            write_new_key(dir)?;
        }
        let set = read_set(dir)?;
        Ok(Keys {
            dir: dir.to_owned(),
            set: RwLock::new(set),
            forced_reload: Mutex::new(None),
            reload_interval: UNKNOWN_KID_RELOAD_INTERVAL,
        })
    }

    /// Makes a new key active; the previous keys stay in JWKS so tokens they
    /// signed keep verifying until they expire.
    pub fn rotate(dir: &Path, retire_after: Duration) -> Result<String, KeyError> {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let kid = write_new_key(dir)?;
        prune(dir, retire_after)?;
        Ok(kid)
    }

    /// Re-reads the directory if the `active` file changed since the last read.
    pub fn reload_if_changed(&self) -> Result<(), KeyError> {
        let stamp = std::fs::metadata(self.dir.join("active"))
            .and_then(|m| m.modified())
            .ok();
        if stamp == self.set.read().expect("lock").stamp {
            return Ok(());
        }
        let set = read_set(&self.dir)?;
        *self.set.write().expect("lock") = set;
        Ok(())
    }

    pub fn active(&self) -> Arc<SigningKey> {
        self.set.read().expect("lock").active.clone()
    }

    pub fn get(&self, kid: &str) -> Option<Arc<SigningKey>> {
        self.set.read().expect("lock").all.get(kid).cloned()
    }

    /// The key `kid`, re-reading the directory first when it is unknown: a
    /// key rotated in by another instance sharing the directory verifies at
    /// once instead of after the next poll. Forced reloads are single-flight
    /// and at most one per [`UNKNOWN_KID_RELOAD_INTERVAL`]; a failed read is
    /// logged and the current keys stay.
    pub fn get_or_reload(&self, kid: &str) -> Option<Arc<SigningKey>> {
        if let Some(key) = self.get(kid) {
            return Some(key);
        }
        let mut last = self.forced_reload.lock().expect("lock");
        // Another caller may have reloaded while this one waited.
        if let Some(key) = self.get(kid) {
            return Some(key);
        }
        if last.is_some_and(|at| at.elapsed() < self.reload_interval) {
            return None;
        }
        *last = Some(Instant::now());
        match read_set(&self.dir) {
            Ok(set) => *self.set.write().expect("lock") = set,
            Err(e) => tracing::warn!(error = %e, "could not reload signing keys"),
        }
        drop(last);
        self.get(kid)
    }

    pub fn jwks(&self) -> Value {
        let set = self.set.read().expect("lock");
        json!({ "keys": set.all.values().map(|k| k.jwk.clone()).collect::<Vec<_>>() })
    }
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> KeyError + '_ {
    move |source| KeyError::Io {
        path: path.to_owned(),
        source,
    }
}

/// kids sort by creation time, which `prune` relies on.
fn new_kid() -> String {
    let secs = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    format!(
        "{secs}-{}",
        &crate::identity::secret::Secret::generate().expose()[..6]
    )
}

fn write_new_key(dir: &Path) -> Result<String, KeyError> {
    let kid = new_kid();
    let pair = KeyPair::generate(KeySize::Rsa2048).map_err(|_| KeyError::Invalid {
        kid: kid.clone(),
        message: "generation failed".into(),
    })?;
    let der = pair.as_der().map_err(|_| KeyError::Invalid {
        kid: kid.clone(),
        message: "encoding failed".into(),
    })?;
    let pem = to_pem("PRIVATE KEY", der.as_ref());
    let path = dir.join(format!("{kid}.pem"));
    write_private(&path, pem.as_bytes()).map_err(io(&path))?;
    // Written last and atomically: a reader never sees an active kid without its key.
    let tmp = dir.join("active.tmp");
    std::fs::write(&tmp, &kid).map_err(io(&tmp))?;
    std::fs::rename(&tmp, dir.join("active")).map_err(io(dir))?;
    Ok(kid)
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(bytes)
}

fn to_pem(label: &str, der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let mut pem = format!("-----BEGIN {label}-----\n");
    for line in body.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(line).expect("base64 is ascii"));
        pem.push('\n');
    }
    pem.push_str(&format!("-----END {label}-----\n"));
    pem
}

fn from_pem(pem: &str) -> Option<Vec<u8>> {
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    STANDARD.decode(body.trim()).ok()
}

fn key_files(dir: &Path) -> Result<Vec<String>, KeyError> {
    let mut kids = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io(dir))? {
        let name = entry
            .map_err(io(dir))?
            .file_name()
            .to_string_lossy()
            .into_owned();
        if let Some(kid) = name.strip_suffix(".pem") {
            kids.push(kid.to_owned());
        }
    }
    kids.sort();
    Ok(kids)
}

fn read_set(dir: &Path) -> Result<KeySet, KeyError> {
    let active_path = dir.join("active");
    let stamp = std::fs::metadata(&active_path)
        .and_then(|m| m.modified())
        .ok();
    let active_kid = std::fs::read_to_string(&active_path)
        .map_err(io(&active_path))?
        .trim()
        .to_owned();
    let mut all = BTreeMap::new();
    for kid in key_files(dir)? {
        let path = dir.join(format!("{kid}.pem"));
        let pem = std::fs::read_to_string(&path).map_err(io(&path))?;
        all.insert(kid.clone(), Arc::new(load_key(&kid, &pem)?));
    }
    let active = all
        .get(&active_kid)
        .cloned()
        .ok_or_else(|| KeyError::Invalid {
            kid: active_kid.clone(),
            message: "active key file missing".into(),
        })?;
    Ok(KeySet { active, all, stamp })
}

fn load_key(kid: &str, pem: &str) -> Result<SigningKey, KeyError> {
    let invalid = |message: &str| KeyError::Invalid {
        kid: kid.to_owned(),
        message: message.to_owned(),
    };
    let der = from_pem(pem).ok_or_else(|| invalid("not PEM"))?;
    let pair = KeyPair::from_pkcs8(&der).map_err(|_| invalid("not an RSA PKCS#8 key"))?;
    let public = pair.public_key();
    let n = public.modulus().big_endian_without_leading_zero().to_vec();
    let e = public.exponent().big_endian_without_leading_zero().to_vec();
    if n.len() < 256 {
        return Err(invalid("RSA keys must be 2048 bits or larger"));
    }
    let decoding = DecodingKey::from_rsa_raw_components(&n, &e);
    let jwk = json!({
        "kty": "RSA",
        "use": "sig",
        "alg": "RS256",
        "kid": kid,
        "n": URL_SAFE_NO_PAD.encode(&n),
        "e": URL_SAFE_NO_PAD.encode(&e),
    });
    Ok(SigningKey {
        kid: kid.to_owned(),
        signer: pair,
        decoding,
        jwk,
    })
}

/// Deletes keys superseded longer than `retire_after` ago: no live token can
/// carry their signature any more.
fn prune(dir: &Path, retire_after: Duration) -> Result<(), KeyError> {
    let kids = key_files(dir)?;
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    for pair in kids.windows(2) {
        let superseded_at: u64 = pair[1]
            .split('-')
            .next()
            .and_then(|s| s.parse().ok())
            .unwrap_or(now);
        if superseded_at + retire_after.as_secs() < now {
            let path = dir.join(format!("{}.pem", pair[0]));
            std::fs::remove_file(&path).map_err(io(&path))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_keeps_the_previous_key_in_jwks() {
        let dir = tempfile::tempdir().unwrap();
        let keys = Keys::load_or_create(dir.path()).unwrap();
        let first = keys.active().kid.clone();
        let second = Keys::rotate(dir.path(), Duration::from_secs(3600)).unwrap();
        keys.reload_if_changed().unwrap();
        assert_eq!(keys.active().kid, second);
        let jwks = keys.jwks();
        let kids: Vec<_> = jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap())
            .collect();
        assert!(kids.contains(&first.as_str()) && kids.contains(&second.as_str()));
    }

    #[derive(Serialize, serde::Deserialize)]
    struct Claims {
        sub: String,
        exp: i64,
    }

    fn claims() -> Claims {
        Claims {
            sub: "someone".into(),
            exp: 4_102_444_800,
        }
    }

    #[test]
    fn pre_parsed_signing_matches_jsonwebtoken_and_verifies_with_the_jwks() {
        let dir = tempfile::tempdir().unwrap();
        let keys = Keys::load_or_create(dir.path()).unwrap();
        let key = keys.active();
        let token = key.sign_jwt("at+jwt", &claims());

        // RS256 (PKCS#1 v1.5) is deterministic: the library's own encoder,
        // given the same key, produces the very same bytes.
        let pem = std::fs::read(dir.path().join(format!("{}.pem", key.kid))).unwrap();
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(key.kid.clone());
        header.typ = Some("at+jwt".into());
        let reference = jsonwebtoken::encode(
            &header,
            &claims(),
            &jsonwebtoken::EncodingKey::from_rsa_pem(&pem).unwrap(),
        )
        .unwrap();
        assert_eq!(token, reference);

        let jwks: jsonwebtoken::jwk::JwkSet = serde_json::from_value(keys.jwks()).unwrap();
        let jwk = jwks.find(&key.kid).unwrap();
        let mut validation = jsonwebtoken::Validation::new(Algorithm::RS256);
        validation.required_spec_claims.clear();
        let decoded = jsonwebtoken::decode::<Claims>(
            &token,
            &DecodingKey::from_jwk(jwk).unwrap(),
            &validation,
        )
        .unwrap();
        assert_eq!(decoded.claims.sub, "someone");
        assert_eq!(decoded.header.typ.as_deref(), Some("at+jwt"));
        jsonwebtoken::decode::<Claims>(&token, &key.decoding, &validation).unwrap();
    }

    #[test]
    fn an_unknown_kid_reloads_the_directory_once_per_interval() {
        let dir = tempfile::tempdir().unwrap();
        let mut keys = Keys::load_or_create(dir.path()).unwrap();
        keys.reload_interval = Duration::from_secs(3600);
        // Rotated elsewhere: this instance has not polled, yet knows the key.
        let second = Keys::rotate(dir.path(), Duration::from_secs(3600)).unwrap();
        assert!(keys.get(&second).is_none());
        assert_eq!(keys.get_or_reload(&second).unwrap().kid, second);
        // Within the interval a further unknown kid does not read the directory.
        let third = Keys::rotate(dir.path(), Duration::from_secs(3600)).unwrap();
        assert!(keys.get_or_reload(&third).is_none());
        keys.reload_interval = Duration::ZERO;
        assert_eq!(keys.get_or_reload(&third).unwrap().kid, third);
    }
}
