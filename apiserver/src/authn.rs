//! Authentication: who sends a request, as kube-apiserver's authenticator chain decides it.
//!
//! In upstream's order (`pkg/kubeapiserver/authenticator/config.go`): the X.509 client
//! certificate (verified against the server's CA during the TLS handshake; CN is the user,
//! each O a group: `staging/src/k8s.io/apiserver/pkg/authentication/request/x509/x509.go`
//! `CommonNameUserConversion`), then the bearer token: the static token file
//! (`--token-auth-file`, `.../authentication/token/tokenfile/tokenfile.go`), then
//! ServiceAccount JWTs ([`crate::sa_token`]). Every authenticated user gets
//! `system:authenticated`; a request with no credentials is `system:anonymous` in
//! `system:unauthenticated` (`.../authentication/request/anonymous`); a bearer token no
//! authenticator accepts is 401 (`bearertoken.invalidToken`).
//!
//! Beyond upstream: a client certificate the CA did not sign fails the TLS handshake instead
//! of getting a 401 (rustls verifies it).

use std::collections::HashMap;

use crate::rbac::UserInfo;
use crate::sa_token::{Claims, TokenError, TokenSigner};

/// Upstream `user.AllAuthenticated`.
pub const AUTHENTICATED: &str = "system:authenticated";
/// Upstream `user.AllUnauthenticated`.
pub const UNAUTHENTICATED: &str = "system:unauthenticated";
/// Upstream `user.Anonymous`.
pub const ANONYMOUS: &str = "system:anonymous";
/// Upstream `user.SystemPrivilegedGroup`: members are allowed everything.
pub const MASTERS: &str = "system:masters";

/// Errors reading `--token-auth-file`.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenFileError {
    /// A record with fewer than three columns (upstream's message).
    #[error("token file '{path}' must have at least 3 columns (token, user name, user uid), found {found}")]
    Columns {
        /// The file.
        path: String,
        /// Columns found.
        found: usize,
    },
    /// An unterminated quoted field.
    #[error("token file '{path}': record {record}: unterminated quoted field")]
    Quote {
        /// The file.
        path: String,
        /// 1-based record number.
        record: usize,
    },
}

/// Parses a static token file: CSV records `token,user,uid[,"group1,group2"]` (upstream
/// `tokenfile.NewCSV`: blank lines skipped, leading spaces trimmed, groups split on `,` and
/// trimmed; a later duplicate token replaces the earlier, with a warning). Each user gets
/// `system:authenticated` as well.
pub fn parse_token_file(
    path: &str,
    text: &str,
) -> Result<HashMap<String, UserInfo>, TokenFileError> {
    let mut tokens = HashMap::new();
    for (i, line) in text.lines().filter(|l| !l.trim().is_empty()).enumerate() {
        let record = csv_record(line).ok_or_else(|| TokenFileError::Quote {
            path: path.to_string(),
            record: i + 1,
        })?;
        if record.len() < 3 {
            return Err(TokenFileError::Columns {
                path: path.to_string(),
                found: record.len(),
            });
        }
        let mut groups: Vec<String> = record
            .get(3)
            .map(|g| {
                g.split(',')
                    .map(str::trim)
                    .filter(|g| !g.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        add_authenticated(&mut groups);
        let user = UserInfo {
            name: record[1].clone(),
            uid: record[2].clone(),
            groups,
        };
        if tokens.insert(record[0].clone(), user).is_some() {
            tracing::warn!(
                "duplicate token has been found in the token file '{path}', record number '{}'",
                i + 1
            );
        }
    }
    Ok(tokens)
}

/// One CSV record (RFC 4180 quoting, leading spaces trimmed as Go's `TrimLeadingSpace`);
/// `None` for an unterminated quoted field.
fn csv_record(line: &str) -> Option<Vec<String>> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut in_quotes = false;
    let mut at_start = true;
    let mut chars = line.trim_end_matches('\r').chars().peekable();
    while let Some(c) = chars.next() {
        if in_quotes {
            if c != '"' {
                field.push(c);
            } else if chars.peek() == Some(&'"') {
                chars.next();
                field.push('"');
            } else {
                in_quotes = false;
            }
            continue;
        }
        match c {
            ' ' | '\t' if at_start => {}
            '"' if at_start => {
                in_quotes = true;
                at_start = false;
            }
            ',' => {
                fields.push(std::mem::take(&mut field));
                at_start = true;
            }
            c => {
                field.push(c);
                at_start = false;
            }
        }
    }
    if in_quotes {
        return None;
    }
    fields.push(field);
    Some(fields)
}

fn add_authenticated(groups: &mut Vec<String>) {
    if !groups.iter().any(|g| g == AUTHENTICATED) {
        groups.push(AUTHENTICATED.to_string());
    }
}

/// The anonymous user (upstream `anonymous.NewAuthenticator`).
pub fn anonymous() -> UserInfo {
    UserInfo {
        name: ANONYMOUS.into(),
        uid: String::new(),
        groups: vec![UNAUTHENTICATED.into()],
    }
}

/// The user of a verified client certificate (DER): CN is the name, each O a group, plus
/// `system:authenticated`. `None` when the certificate cannot be read or has no CN (upstream
/// `CommonNameUserConversion`: "common name of client certificate is empty").
pub fn certificate_user(der: &[u8]) -> Option<UserInfo> {
    let (cn, orgs) = certificate_subject(der)?;
    if cn.is_empty() {
        return None;
    }
    let mut groups = orgs;
    add_authenticated(&mut groups);
    Some(UserInfo {
        name: cn,
        uid: String::new(),
        groups,
    })
}

/// The subject's first CN and every O of an X.509 certificate (DER), read with a minimal DER
/// walker: `Certificate -> tbsCertificate -> [version], serial, signature, issuer, validity,
/// subject` (RFC 5280 4.1).
pub fn certificate_subject(der: &[u8]) -> Option<(String, Vec<String>)> {
    let (tag, cert, _) = tlv(der)?;
    if tag != 0x30 {
        return None;
    }
    let (tag, tbs, _) = tlv(cert)?;
    if tag != 0x30 {
        return None;
    }
    let mut rest = tbs;
    let mut fields = Vec::new();
    while !rest.is_empty() && fields.len() < 7 {
        let (tag, content, next) = tlv(rest)?;
        fields.push((tag, content));
        rest = next;
    }
    // Skip the optional explicit [0] version.
    let offset = usize::from(fields.first()?.0 == 0xa0);
    let (tag, subject) = *fields.get(offset + 4)?;
    if tag != 0x30 {
        return None;
    }
    const CN: &[u8] = &[0x55, 0x04, 0x03];
    const O: &[u8] = &[0x55, 0x04, 0x0a];
    let mut cn = None;
    let mut orgs = Vec::new();
    let mut rdns = subject;
    while !rdns.is_empty() {
        let (_, set, next) = tlv(rdns)?;
        rdns = next;
        let mut atvs = set;
        while !atvs.is_empty() {
            let (_, atv, next) = tlv(atvs)?;
            atvs = next;
            let (oid_tag, oid, value) = tlv(atv)?;
            let (_, text, _) = tlv(value)?;
            if oid_tag != 0x06 {
                continue;
            }
            let text = String::from_utf8_lossy(text).into_owned();
            if oid == CN && cn.is_none() {
                cn = Some(text);
            } else if oid == O {
                orgs.push(text);
            }
        }
    }
    Some((cn.unwrap_or_default(), orgs))
}

/// One DER tag-length-value: (tag, content, what follows). `None` when truncated.
fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return None;
        }
        let (bytes, after) = rest.split_at_checked(n)?;
        rest = after;
        bytes
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b))
    };
    let (content, after) = rest.split_at_checked(len)?;
    Some((tag, content, after))
}

/// A request's credentials, as the HTTP layer found them.
#[derive(Debug, Default, Clone, Copy)]
pub struct Credentials<'a> {
    /// The verified client certificate (DER), if the client sent one.
    pub client_certificate: Option<&'a [u8]>,
    /// The `Authorization` header's value.
    pub authorization: Option<&'a str>,
}

/// Why a request is not authenticated (the client gets 401 `Unauthorized`).
#[derive(Debug, thiserror::Error)]
pub enum AuthnError {
    /// A bearer token no authenticator accepted.
    #[error("invalid bearer token: {0}")]
    InvalidToken(String),
}

/// The authenticators of one server.
#[derive(Debug)]
pub struct Authenticator {
    /// `--token-auth-file` tokens (and the generated admin token of the kubeconfig).
    pub tokens: HashMap<String, UserInfo>,
    /// ServiceAccount token issuer and validator.
    pub signer: TokenSigner,
}

impl Authenticator {
    /// Authenticates a request: certificate, then bearer token, else anonymous. The
    /// ServiceAccount of a JWT must still exist with the uid it had when the token was issued:
    /// `service_account_uid(namespace, name)` returns the stored uid and whether the
    /// ServiceAccount is being deleted.
    pub fn authenticate(
        &self,
        credentials: Credentials<'_>,
        now: i64,
        service_account_uid: impl Fn(&str, &str) -> Option<(String, bool)>,
    ) -> Result<UserInfo, AuthnError> {
        if let Some(user) = credentials.client_certificate.and_then(certificate_user) {
            return Ok(user);
        }
        let Some(header) = credentials.authorization else {
            return Ok(anonymous());
        };
        // Upstream `bearertoken.AuthenticateRequest`: `Bearer <token>`, case-insensitive
        // scheme; other schemes (Basic) are not ours and leave the request anonymous.
        let mut parts = header.trim().splitn(2, ' ');
        let scheme = parts.next().unwrap_or_default();
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Ok(anonymous());
        }
        let token = parts.next().unwrap_or_default().trim();
        if token.is_empty() {
            return Ok(anonymous());
        }
        if let Some(user) = self.tokens.get(token) {
            return Ok(user.clone());
        }
        let claims = self
            .signer
            .validate(token, now)
            .map_err(|e| AuthnError::InvalidToken(e.to_string()))?;
        check_service_account(
            &claims,
            service_account_uid(&claims.namespace, &claims.name),
        )
        .map_err(AuthnError::InvalidToken)?;
        let mut user = UserInfo::service_account(&claims.namespace, &claims.name);
        user.uid = claims.uid;
        Ok(user)
    }
}

/// Upstream `legacyValidator`/`validator.Validate`: the ServiceAccount must exist, not be
/// being deleted, and have the uid the token names.
fn check_service_account(claims: &Claims, stored: Option<(String, bool)>) -> Result<(), String> {
    match stored {
        None => Err(format!("serviceaccounts \"{}\" not found", claims.name)),
        Some((_, true)) => Err(format!(
            "service account {}/{} has been deleted",
            claims.namespace, claims.name
        )),
        Some((uid, false)) if uid != claims.uid => Err(format!(
            "service account UID ({uid}) does not match claim ({})",
            claims.uid
        )),
        Some(_) => Ok(()),
    }
}

impl From<TokenError> for AuthnError {
    fn from(e: TokenError) -> Self {
        AuthnError::InvalidToken(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sa_token::DEFAULT_ISSUER;

    /// tokenfile_test.go `TestTokenFile`: columns, optional quoted groups, blank lines.
    #[test]
    fn token_file_reads_upstreams_csv_format() {
        let text = "token1,user1,uid1\n\ntoken2,user2,uid2,\"group1,group2\"\n token3, user3 ,uid3,group3\n";
        let tokens = parse_token_file("f.csv", text).unwrap();
        assert_eq!(
            tokens["token1"],
            UserInfo {
                name: "user1".into(),
                uid: "uid1".into(),
                groups: vec![AUTHENTICATED.into()],
            }
        );
        assert_eq!(tokens["token2"].groups, ["group1", "group2", AUTHENTICATED]);
        assert_eq!(tokens["token3"].name, "user3 ");
        assert_eq!(tokens["token3"].groups, ["group3", AUTHENTICATED]);
        assert_eq!(
            parse_token_file("f.csv", "token1,user1\n"),
            Err(TokenFileError::Columns {
                path: "f.csv".into(),
                found: 2
            })
        );
        assert!(matches!(
            parse_token_file("f.csv", "t,u,i,\"g1,g2\n"),
            Err(TokenFileError::Quote { record: 1, .. })
        ));
    }

    /// x509.go `CommonNameUserConversion`: CN is the user, every O a group.
    #[test]
    fn client_certificates_map_cn_to_user_and_o_to_groups() {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::OrganizationName, "system:masters");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "alice");
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let user = certificate_user(cert.der()).unwrap();
        assert_eq!(user.name, "alice");
        let mut groups = user.groups.clone();
        groups.sort();
        // (rcgen keeps one value per attribute type, so one O here.)
        assert_eq!(groups, ["system:authenticated", "system:masters"]);
        assert_eq!(certificate_user(b"\x30\x03\x02\x01"), None);
    }

    fn authenticator() -> Authenticator {
        Authenticator {
            tokens: parse_token_file("f", "secret,bob,7,devs").unwrap(),
            signer: TokenSigner::generate(DEFAULT_ISSUER, vec![DEFAULT_ISSUER.into()]).unwrap(),
        }
    }

    /// bearertoken.go: a token nobody accepts is an error (401); no credentials is anonymous.
    #[test]
    fn bearer_tokens_authenticate_or_fail_and_no_credentials_is_anonymous() {
        let a = authenticator();
        let none = |_: &str, _: &str| None;
        let creds = |h| Credentials {
            client_certificate: None,
            authorization: Some(h),
        };
        assert_eq!(
            a.authenticate(creds("Bearer secret"), 0, none)
                .unwrap()
                .name,
            "bob"
        );
        assert!(a.authenticate(creds("Bearer wrong"), 0, none).is_err());
        assert_eq!(
            a.authenticate(Credentials::default(), 0, none).unwrap(),
            anonymous()
        );
        let claims = Claims {
            namespace: "ns".into(),
            name: "sa".into(),
            uid: "u1".into(),
            jti: "j".into(),
        };
        let jwt = a
            .signer
            .issue(&claims, &[DEFAULT_ISSUER.to_string()], 100, 3600)
            .unwrap();
        let header = format!("Bearer {jwt}");
        let user = a
            .authenticate(creds(&header), 200, |ns, n| {
                (ns == "ns" && n == "sa").then(|| ("u1".to_string(), false))
            })
            .unwrap();
        assert_eq!(user.name, "system:serviceaccount:ns:sa");
        assert_eq!(user.uid, "u1");
        assert_eq!(
            user.groups,
            [
                "system:serviceaccounts",
                "system:serviceaccounts:ns",
                AUTHENTICATED
            ]
        );
        // Deleted, recreated (another uid) or expired: refused.
        assert!(a.authenticate(creds(&header), 200, none).is_err());
        assert!(a
            .authenticate(creds(&header), 200, |_, _| Some(("u2".into(), false)))
            .is_err());
        assert!(a
            .authenticate(creds(&header), 5000, |_, _| Some(("u1".into(), false)))
            .is_err());
    }
}
