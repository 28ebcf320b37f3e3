//! Signing keys: RS256 key pairs kept as PKCS#8 PEM files in `keys_dir`, one
//! file per `kid`, plus an `active` file naming the key that signs. Every
//! instance reads the same directory, so rotation on one is seen by all at the
//! next reload.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    sync::{Arc, RwLock},
    time::{Duration, SystemTime},
};

use aws_lc_rs::{
    encoding::AsDer,
    rsa::{KeyPair, KeySize},
    signature::KeyPair as _,
};
use base64::{
    Engine,
    engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD},
};
use jsonwebtoken::{DecodingKey, EncodingKey};
use serde_json::{Value, json};

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

pub struct SigningKey {
    pub kid: String,
    pub encoding: EncodingKey,
    pub decoding: DecodingKey,
    jwk: Value,
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
    let encoding =
        EncodingKey::from_rsa_pem(pem.as_bytes()).map_err(|e| invalid(&e.to_string()))?;
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
        encoding,
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
}
