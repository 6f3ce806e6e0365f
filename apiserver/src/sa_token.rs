//! ServiceAccount tokens: the JWTs `TokenRequest` (`serviceaccounts/{name}/token`, what
//! `kubectl create token` asks) issues and the bearer-token authenticator validates.
//!
//! Upstream: `pkg/serviceaccount/jwt.go` (`JWTTokenGenerator`, `JWTTokenAuthenticator`) and
//! `pkg/serviceaccount/claims.go` (the `kubernetes.io` private claim). The claims are
//! upstream's: `iss`, `sub` (`system:serviceaccount:NS:NAME`), `aud`, `exp`, `iat`, `nbf`,
//! `jti` and `kubernetes.io {namespace, serviceaccount {name, uid}}`.
//!
//! Signed with ES256 (ECDSA P-256, SHA-256), which upstream also accepts for
//! `--service-account-signing-key-file`, through `ring`: already in the dependency tree for
//! rustls, so no JWT crate (and no RSA implementation) is added for one algorithm. The key is
//! generated at start, so tokens do not survive a restart of the server.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, KeyPair};
use serde_json::{json, Value};

/// Upstream's default `--service-account-issuer` of kubeadm clusters, also the default
/// audience (`--api-audiences` defaults to the issuer).
pub const DEFAULT_ISSUER: &str = "https://kubernetes.default.svc.cluster.local";

/// Why a token was not accepted (logged; the client only sees 401 Unauthorized, as upstream).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not three base64url parts of JSON, or not ES256.
    #[error("token is malformed: {0}")]
    Malformed(&'static str),
    /// Issued by another issuer: not one of ours (the next authenticator may know it).
    #[error("token issuer {0:?} is not this server's")]
    OtherIssuer(String),
    /// The signature does not verify with this server's key.
    #[error("invalid signature")]
    Signature,
    /// `exp` is past.
    #[error("token has expired")]
    Expired,
    /// `nbf` is in the future.
    #[error("token is not valid yet")]
    NotYetValid,
    /// None of the token's audiences is accepted.
    #[error("token audiences {0:?} is invalid for the target audiences")]
    Audience(Vec<String>),
    /// Signing failed (the system random source).
    #[error("signing failed")]
    Signing,
}

/// What a validated token says (upstream `privateClaims` plus `sub`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    /// ServiceAccount namespace.
    pub namespace: String,
    /// ServiceAccount name.
    pub name: String,
    /// ServiceAccount uid at issue time (checked against the stored one on use).
    pub uid: String,
    /// Token id (`jti`), upstream's `authentication.kubernetes.io/credential-id` extra.
    pub jti: String,
}

/// The server's ServiceAccount token issuer and validator.
pub struct TokenSigner {
    key: EcdsaKeyPair,
    kid: String,
    issuer: String,
    audiences: Vec<String>,
    rng: SystemRandom,
}

impl std::fmt::Debug for TokenSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSigner")
            .field("kid", &self.kid)
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

impl TokenSigner {
    /// A signer with a fresh key, for `issuer`, accepting tokens for `audiences`.
    pub fn generate(issuer: &str, audiences: Vec<String>) -> Result<TokenSigner, TokenError> {
        let rng = SystemRandom::new();
        let alg = &signature::ECDSA_P256_SHA256_FIXED_SIGNING;
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(alg, &rng).map_err(|_| TokenError::Signing)?;
        let key =
            EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng).map_err(|_| TokenError::Signing)?;
        // Upstream's `keyIDFromPublicKey`: base64url of the SHA-256 of the public key.
        let kid = URL_SAFE_NO_PAD.encode(ring::digest::digest(
            &ring::digest::SHA256,
            key.public_key().as_ref(),
        ));
        Ok(TokenSigner {
            key,
            kid,
            issuer: issuer.to_string(),
            audiences,
            rng,
        })
    }

    /// The audiences tokens are issued for when a request names none (the API server's own).
    pub fn default_audiences(&self) -> &[String] {
        &self.audiences
    }

    /// Issues a token for a ServiceAccount, valid from `now` for `expiration_seconds`.
    pub fn issue(
        &self,
        claims: &Claims,
        audiences: &[String],
        now: i64,
        expiration_seconds: i64,
    ) -> Result<String, TokenError> {
        let header = json!({"alg": "ES256", "kid": self.kid});
        let payload = json!({
            "aud": audiences,
            "exp": now + expiration_seconds,
            "iat": now,
            "iss": self.issuer,
            "jti": claims.jti,
            "kubernetes.io": {
                "namespace": claims.namespace,
                "serviceaccount": {"name": claims.name, "uid": claims.uid},
            },
            "nbf": now,
            "sub": format!("{}{}:{}", crate::rbac::SERVICE_ACCOUNT_PREFIX, claims.namespace, claims.name),
        });
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(payload.to_string())
        );
        let sig = self
            .key
            .sign(&self.rng, signing_input.as_bytes())
            .map_err(|_| TokenError::Signing)?;
        Ok(format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(sig.as_ref())
        ))
    }

    /// Validates a token at `now`: ours (issuer), signature, `nbf`/`exp`, audience. Whether the
    /// ServiceAccount still exists with the same uid is the caller's check (it needs the store).
    pub fn validate(&self, token: &str, now: i64) -> Result<Claims, TokenError> {
        let mut parts = token.split('.');
        let (Some(h), Some(p), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Malformed("not a JWS compact serialization"));
        };
        let decode = |part: &str| -> Result<Value, TokenError> {
            let bytes = URL_SAFE_NO_PAD
                .decode(part)
                .map_err(|_| TokenError::Malformed("not base64url"))?;
            serde_json::from_slice(&bytes).map_err(|_| TokenError::Malformed("not JSON"))
        };
        let header = decode(h)?;
        let payload = decode(p)?;
        // Upstream's authenticator first checks the issuer, so tokens of other issuers go to
        // the next authenticator instead of failing here.
        let iss = payload["iss"].as_str().unwrap_or_default();
        if iss != self.issuer {
            return Err(TokenError::OtherIssuer(iss.to_string()));
        }
        if header["alg"] != "ES256" {
            return Err(TokenError::Malformed("unsupported alg"));
        }
        let sig = URL_SAFE_NO_PAD
            .decode(s)
            .map_err(|_| TokenError::Malformed("not base64url"))?;
        let signed = token.len() - s.len() - 1;
        let input = token.get(..signed).unwrap_or_default();
        signature::UnparsedPublicKey::new(
            &signature::ECDSA_P256_SHA256_FIXED,
            self.key.public_key().as_ref(),
        )
        .verify(input.as_bytes(), &sig)
        .map_err(|_| TokenError::Signature)?;
        let exp = payload["exp"]
            .as_i64()
            .ok_or(TokenError::Malformed("no exp"))?;
        if now >= exp {
            return Err(TokenError::Expired);
        }
        if payload["nbf"].as_i64().is_some_and(|nbf| now < nbf) {
            return Err(TokenError::NotYetValid);
        }
        let aud: Vec<String> = match &payload["aud"] {
            Value::String(a) => vec![a.clone()],
            Value::Array(a) => a
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect(),
            _ => Vec::new(),
        };
        if !aud.iter().any(|a| self.audiences.contains(a)) {
            return Err(TokenError::Audience(aud));
        }
        let k = &payload["kubernetes.io"];
        let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
        let claims = Claims {
            namespace: text(&k["namespace"]),
            name: text(&k["serviceaccount"]["name"]),
            uid: text(&k["serviceaccount"]["uid"]),
            jti: text(&payload["jti"]),
        };
        let sub = format!(
            "{}{}:{}",
            crate::rbac::SERVICE_ACCOUNT_PREFIX,
            claims.namespace,
            claims.name
        );
        if claims.namespace.is_empty() || claims.name.is_empty() || payload["sub"] != sub.as_str() {
            return Err(TokenError::Malformed(
                "kubernetes.io claims do not match sub",
            ));
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer() -> TokenSigner {
        TokenSigner::generate(DEFAULT_ISSUER, vec![DEFAULT_ISSUER.to_string()]).unwrap()
    }

    fn claims() -> Claims {
        Claims {
            namespace: "ns".into(),
            name: "sa".into(),
            uid: "u-1".into(),
            jti: "j-1".into(),
        }
    }

    fn payload(token: &str) -> Value {
        let p = token.split('.').nth(1).unwrap();
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(p).unwrap()).unwrap()
    }

    /// pkg/serviceaccount/claims.go `Claims`: the registered and private claims upstream sets.
    #[test]
    fn issued_tokens_carry_upstreams_claims() {
        let s = signer();
        let aud = vec![DEFAULT_ISSUER.to_string()];
        let t = s.issue(&claims(), &aud, 1_000, 3600).unwrap();
        assert_eq!(
            payload(&t),
            json!({
                "aud": [DEFAULT_ISSUER], "exp": 4600, "iat": 1000, "nbf": 1000,
                "iss": DEFAULT_ISSUER, "jti": "j-1",
                "sub": "system:serviceaccount:ns:sa",
                "kubernetes.io": {"namespace": "ns", "serviceaccount": {"name": "sa", "uid": "u-1"}},
            })
        );
        assert_eq!(s.validate(&t, 1_001), Ok(claims()));
    }

    /// jwt.go `AuthenticateToken`: expiry, not-before, signature and audience are checked.
    #[test]
    fn tokens_are_refused_when_expired_forged_or_for_another_audience() {
        let s = signer();
        let aud = vec![DEFAULT_ISSUER.to_string()];
        let t = s.issue(&claims(), &aud, 1_000, 600).unwrap();
        assert_eq!(s.validate(&t, 1_600), Err(TokenError::Expired));
        assert_eq!(s.validate(&t, 999), Err(TokenError::NotYetValid));
        // Another server's key: same issuer, signature fails.
        let other = signer().issue(&claims(), &aud, 1_000, 600).unwrap();
        assert_eq!(s.validate(&other, 1_001), Err(TokenError::Signature));
        // A payload changed after signing.
        let mut parts: Vec<String> = t.split('.').map(str::to_string).collect();
        let mut p = payload(&t);
        p["kubernetes.io"]["serviceaccount"]["name"] = json!("admin");
        p["sub"] = json!("system:serviceaccount:ns:admin");
        parts[1] = URL_SAFE_NO_PAD.encode(p.to_string());
        assert_eq!(
            s.validate(&parts.join("."), 1_001),
            Err(TokenError::Signature)
        );
        let t = s
            .issue(&claims(), &["vault".to_string()], 1_000, 600)
            .unwrap();
        assert_eq!(
            s.validate(&t, 1_001),
            Err(TokenError::Audience(vec!["vault".into()]))
        );
        assert!(matches!(
            s.validate("not-a-jwt", 1),
            Err(TokenError::Malformed(_))
        ));
        let foreign = TokenSigner::generate("https://elsewhere", aud.clone())
            .unwrap()
            .issue(&claims(), &aud, 1_000, 600)
            .unwrap();
        assert!(matches!(
            s.validate(&foreign, 1_001),
            Err(TokenError::OtherIssuer(_))
        ));
    }
}
