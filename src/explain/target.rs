//! The object named on the command line: `service NAME`, `svc NAME`, `svc/NAME`,
//! `service/NAME` or `services/NAME`, as kubectl spells resource references.

/// A command-line target that is not a Service reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadTarget(pub String);

impl std::fmt::Display for BadTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: expected `service NAME`, `svc NAME` or `svc/NAME` (only Services can be explained)",
            self.0
        )
    }
}

impl std::error::Error for BadTarget {}

/// Whether `kind` names the Service resource as kubectl accepts it.
fn is_service(kind: &str) -> bool {
    matches!(
        kind.to_ascii_lowercase().as_str(),
        "service" | "services" | "svc"
    )
}

/// The Service name from the positional arguments.
pub fn service_name(args: &[String]) -> Result<String, BadTarget> {
    let bad = || BadTarget(args.join(" "));
    let name = match args {
        [one] => match one.split_once('/') {
            Some((kind, name)) if is_service(kind) => name.to_string(),
            _ => return Err(bad()),
        },
        [kind, name] if is_service(kind) && !name.contains('/') => name.clone(),
        _ => return Err(bad()),
    };
    if name.is_empty() {
        return Err(bad());
    }
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<String, BadTarget> {
        service_name(&args.iter().map(|a| a.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn every_kubectl_spelling_of_a_service_is_accepted() {
        for args in [
            &["service", "web"][..],
            &["svc", "web"],
            &["services", "web"],
            &["svc/web"],
            &["service/web"],
            &["Service/web"],
        ] {
            assert_eq!(parse(args).as_deref(), Ok("web"), "{args:?}");
        }
    }

    #[test]
    fn other_kinds_and_malformed_targets_are_refused() {
        for args in [
            &["pod", "web"][..],
            &["deploy/web"],
            &["web"],
            &["svc/"],
            &["svc", "a/b"],
            &["svc", "web", "extra"],
            &[],
        ] {
            assert!(parse(args).is_err(), "{args:?}");
        }
    }
}
