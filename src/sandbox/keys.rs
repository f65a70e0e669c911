//! The sandbox's keys: generated once into a directory and reused on later starts, so the
//! server, the sandbox binary and the interop scripts can all read the same files.

use std::path::{Path, PathBuf};

use rand::RngExt as _;
use secrecy::SecretString;

use crate::wechat::aead::ApiV3Key;
use crate::wechat::keys::{self, KeyError, PlatformKeys, RsaSigner, RsaVerifier};
use crate::wechat::sign::{MerchantSigner, PlatformSigner};

pub const SANDBOX_MCHID: &str = "1900000109";
pub const SANDBOX_APPID: &str = "wxsandbox00000000";
pub const SANDBOX_MERCHANT_SERIAL: &str = "5157F09EFDC096DE15EBE81A47057A72SANDBOX";
pub const SANDBOX_PUBLIC_KEY_ID: &str = "PUB_KEY_ID_0119000001092026SANDBOX00000001";

pub const MERCHANT_KEY_FILE: &str = "merchant_private_key.pem";
pub const MERCHANT_PUBLIC_FILE: &str = "merchant_public_key.pem";
pub const PLATFORM_KEY_FILE: &str = "platform_private_key.pem";
pub const PLATFORM_PUBLIC_FILE: &str = "platform_public_key.pem";
pub const APIV3_KEY_FILE: &str = "apiv3_key";
pub const APP_SECRET_FILE: &str = "app_secret";

/// The sandbox's identity and keys, with the merchant side the server uses.
#[derive(Clone)]
pub struct SandboxKeys {
    pub dir: PathBuf,
    pub mchid: String,
    pub appid: String,
    pub app_secret: String,
    pub merchant_serial: String,
    pub platform_key_id: String,
    pub merchant_signer: RsaSigner,
    pub merchant_verifier: RsaVerifier,
    pub platform_signer: RsaSigner,
    pub platform_keys: PlatformKeys,
    pub apiv3_key: ApiV3Key,
}

impl std::fmt::Debug for SandboxKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SandboxKeys")
            .field("dir", &self.dir)
            .field("mchid", &self.mchid)
            .field("appid", &self.appid)
            .finish_non_exhaustive()
    }
}

impl SandboxKeys {
    /// Reads the keys in `dir`, generating whichever file is missing.
    pub fn load_or_generate(dir: &Path) -> Result<Self, KeyError> {
        std::fs::create_dir_all(dir).map_err(|source| KeyError::Read {
            path: dir.display().to_string(),
            source,
        })?;
        let (merchant_key, merchant_public) =
            key_pair(dir, MERCHANT_KEY_FILE, MERCHANT_PUBLIC_FILE)?;
        let (platform_key, platform_public) =
            key_pair(dir, PLATFORM_KEY_FILE, PLATFORM_PUBLIC_FILE)?;
        let apiv3 = secret_file(dir, APIV3_KEY_FILE)?;
        let app_secret = secret_file(dir, APP_SECRET_FILE)?;
        let apiv3_key = ApiV3Key::parse(SecretString::from(apiv3))
            .map_err(|e| KeyError::Generate(format!("{APIV3_KEY_FILE}: {e}")))?;
        let mut platform_keys = PlatformKeys::new();
        platform_keys.insert(SANDBOX_PUBLIC_KEY_ID, platform_public);
        Ok(Self {
            dir: dir.to_path_buf(),
            mchid: SANDBOX_MCHID.into(),
            appid: SANDBOX_APPID.into(),
            app_secret,
            merchant_serial: SANDBOX_MERCHANT_SERIAL.into(),
            platform_key_id: SANDBOX_PUBLIC_KEY_ID.into(),
            merchant_signer: RsaSigner::new(merchant_key),
            merchant_verifier: RsaVerifier::new(merchant_public),
            platform_signer: RsaSigner::new(platform_key),
            platform_keys,
            apiv3_key,
        })
    }

    pub fn merchant(&self) -> MerchantSigner {
        MerchantSigner::new(
            &self.mchid,
            &self.merchant_serial,
            self.merchant_signer.clone(),
        )
    }

    pub fn platform(&self) -> PlatformSigner {
        PlatformSigner::new(&self.platform_key_id, self.platform_signer.clone())
    }

    pub fn path(&self, file: &str) -> PathBuf {
        self.dir.join(file)
    }
}

fn key_pair(
    dir: &Path,
    private_file: &str,
    public_file: &str,
) -> Result<(keys::PrivateKey, keys::PublicKey), KeyError> {
    let private_path = dir.join(private_file);
    if !private_path.exists() {
        let key = keys::generate_private_key()?;
        write_new(&private_path, &keys::private_key_to_pem(&key)?)?;
    }
    // Read back what is on disk: another process may have written first.
    let key = keys::private_key_from_pem(&keys::read_pem(&private_path)?)?;
    let public = key.to_public_key()?;
    let public_path = dir.join(public_file);
    if !public_path.exists() {
        write_new(&public_path, &keys::public_key_to_pem(&public)?)?;
    }
    Ok((key, public))
}

/// A 32-character alphanumeric secret kept in a file.
fn secret_file(dir: &Path, file: &str) -> Result<String, KeyError> {
    let path = dir.join(file);
    if !path.exists() {
        write_new(&path, &random_secret())?;
    }
    Ok(keys::read_pem(&path)?.trim().to_string())
}

fn random_secret() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..32)
        .map(|_| {
            char::from(
                ALPHABET
                    .get(rng.random_range(0..ALPHABET.len()))
                    .copied()
                    .unwrap_or(b'a'),
            )
        })
        .collect()
}

/// Writes through a temporary file and a hard link, so two processes starting at once never
/// read a half-written key: the first writer wins and the other reads its file.
fn write_new(path: &Path, content: &str) -> Result<(), KeyError> {
    let io = |source| KeyError::Read {
        path: path.display().to_string(),
        source,
    };
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, content).map_err(io)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
    }
    let linked = std::fs::hard_link(&tmp, path);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => Err(io(e)),
        _ => Ok(()),
    }
}
