//! Where a GitOps engine reads an environment from: a Git URL, a branch and a folder, each
//! checked as it is read, so a printed object never carries a value its engine would refuse
//! (or a credential).

use std::fmt;

/// Why a source setting was refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SourceError {
    /// The URL is not one both engines read.
    #[error(
        "invalid Git URL `{0}`: expected https://, http:// or ssh:// followed by a host and a path \
         (scp-like `git@host:org/repo.git` is written ssh://git@host/org/repo.git)"
    )]
    Url(String),
    /// The URL carries a password or token; it is not repeated.
    #[error(
        "the Git URL carries a password or token: give the URL without it and let the engine \
         read the credentials from a Secret (Flux: GitRepository .spec.secretRef; Argo CD: a \
         repository Secret)"
    )]
    Credentials,
    /// The branch is not a valid Git branch name.
    #[error("invalid branch `{0}`: expected a Git branch name (`git check-ref-format --branch`)")]
    Branch(String),
    /// The path is not a folder inside the repository.
    #[error(
        "invalid path `{0}`: expected a folder inside the repository, relative to its root \
         (e.g. out/production), without `..`"
    )]
    Path(String),
}

/// A Git repository URL with a scheme both Flux and Argo CD read, and no credentials in it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GitUrl(String);

impl GitUrl {
    /// Checks `url`: `https://`, `http://` or `ssh://`, a host, a path; no password.
    pub fn parse(url: &str) -> Result<Self, SourceError> {
        let bad = || SourceError::Url(url.to_owned());
        let rest = ["https://", "http://", "ssh://"]
            .iter()
            .find_map(|scheme| url.strip_prefix(scheme))
            .ok_or_else(bad)?;
        if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad());
        }
        let (authority, path) = rest.split_once('/').ok_or_else(bad)?;
        let host = match authority.rsplit_once('@') {
            Some((userinfo, host)) => {
                if userinfo.contains(':') {
                    return Err(SourceError::Credentials);
                }
                host
            }
            None => authority,
        };
        if host.is_empty() || path.trim_matches('/').is_empty() {
            return Err(bad());
        }
        Ok(Self(url.to_owned()))
    }

    /// A remote as `git remote get-url` prints it, with scp-like `git@host:org/repo.git`
    /// written as the `ssh://git@host/org/repo.git` both engines read; other forms unchanged.
    pub fn from_remote(remote: &str) -> String {
        match remote.split_once(':') {
            Some((host, path)) if !remote.contains("://") && !path.starts_with('/') => {
                format!("ssh://{host}/{path}")
            }
            _ => remote.to_owned(),
        }
    }

    /// The URL.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A branch name as `git check-ref-format --branch` accepts it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Branch(String);

impl Branch {
    /// Checks `name` against Git's rules for ref names.
    pub fn parse(name: &str) -> Result<Self, SourceError> {
        let ok = !name.is_empty()
            && !name.starts_with(['-', '/', '.'])
            && !name.ends_with(['/', '.'])
            && !name.ends_with(".lock")
            && !name.contains("..")
            && !name.contains("//")
            && !name.contains("@{")
            && !name.contains("/.")
            && name != "@"
            && !name
                .chars()
                .any(|c| c.is_control() || " ~^:?*[\\".contains(c));
        if ok {
            Ok(Self(name.to_owned()))
        } else {
            Err(SourceError::Branch(name.to_owned()))
        }
    }

    /// The branch name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A folder inside the repository, relative to its root, normalized (`out/production`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RepoPath(String);

impl RepoPath {
    /// Checks `path`: relative, no `..`; `./` and doubled or trailing slashes are dropped.
    pub fn parse(path: &str) -> Result<Self, SourceError> {
        let bad = || SourceError::Path(path.to_owned());
        if path.starts_with('/') || path.chars().any(|c| c.is_control() || c == '\\') {
            return Err(bad());
        }
        let parts: Vec<&str> = path
            .split('/')
            .filter(|p| !p.is_empty() && *p != ".")
            .collect();
        if parts.is_empty() || parts.contains(&"..") {
            return Err(bad());
        }
        Ok(Self(parts.join("/")))
    }

    /// `out/production`: as Argo CD's `source.path` reads it.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `./out/production`: as Flux's `spec.path` is usually written.
    pub fn dotted(&self) -> String {
        format!("./{}", self.0)
    }
}

impl fmt::Display for RepoPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where an environment's rendered folder is read from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Source {
    /// The repository.
    pub url: GitUrl,
    /// The branch the engine follows.
    pub branch: Branch,
    /// The environment's folder in it.
    pub path: RepoPath,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_both_engines_read_pass_and_others_are_refused() {
        for ok in [
            "https://github.com/acme/infra.git",
            "http://127.0.0.1:8080/infra.git",
            "ssh://git@github.com/acme/infra.git",
            "https://bot@git.example.com/infra",
        ] {
            assert_eq!(GitUrl::parse(ok).map(|u| u.0), Ok(ok.to_owned()));
        }
        for bad in [
            "",
            "git@github.com:acme/infra.git",
            "file:///srv/infra.git",
            "https://",
            "https://github.com",
            "https://github.com/",
            "https://github.com/acme infra",
            "https:///acme/infra",
        ] {
            assert_eq!(
                GitUrl::parse(bad),
                Err(SourceError::Url(bad.into())),
                "{bad}"
            );
        }
    }

    #[test]
    fn scp_like_remotes_become_ssh_urls() {
        assert_eq!(
            GitUrl::from_remote("git@github.com:acme/infra.git"),
            "ssh://git@github.com/acme/infra.git"
        );
        let https = "https://github.com/acme/infra.git";
        assert_eq!(GitUrl::from_remote(https), https);
    }

    #[test]
    fn a_url_with_a_token_is_refused_without_repeating_it() {
        let err = GitUrl::parse("https://bot:ghp_s3cr3t@github.com/acme/infra.git");
        assert_eq!(err, Err(SourceError::Credentials));
        let text = SourceError::Credentials.to_string();
        assert!(!text.contains("s3cr3t"), "{text}");
    }

    #[test]
    fn branches_follow_gits_rules() {
        for ok in ["main", "release/1.2", "feature-x", "v1.0"] {
            assert!(Branch::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "", "-x", "a..b", "a b", "a~1", "a^", "a:b", "x.lock", "a/", "/a", "@", "a@{1}",
            "a//b", "a/.b", "a*",
        ] {
            assert_eq!(
                Branch::parse(bad),
                Err(SourceError::Branch(bad.into())),
                "{bad}"
            );
        }
    }

    #[test]
    fn paths_are_relative_folders_inside_the_repository() {
        let path = RepoPath::parse("./out//production/").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(path.as_str(), "out/production");
        assert_eq!(path.dotted(), "./out/production");
        for bad in [
            "",
            ".",
            "/out/production",
            "../out",
            "out/../../etc",
            "out\\prod",
        ] {
            assert_eq!(
                RepoPath::parse(bad),
                Err(SourceError::Path(bad.into())),
                "{bad}"
            );
        }
    }
}
