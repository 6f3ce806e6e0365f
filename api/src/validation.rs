//! Validation of pools, worded like kube-apiserver's field errors.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use svcplane_rules::field_error::Path;
use svcplane_rules::meta::validate_labels;
use svcplane_rules::names::validate_qualified_name;
use svcplane_rules::FieldError;

use crate::block::{AddressBlock, BlockError, IpBlock, MAX_BLOCK_ADDRESSES};
use crate::pool::LoadBalancerIPPool;

/// Checks one pool on its own: every block parses, no two blocks of the pool overlap, the
/// selectors are valid label selectors (upstream `ValidateLabelSelector`).
pub fn validate_pool(pool: &LoadBalancerIPPool) -> Vec<FieldError> {
    let spec_path = Path::new("spec");
    let blocks_path = spec_path.child("blocks");
    let mut errs = Vec::new();
    if pool.spec.blocks.is_empty() {
        errs.push(FieldError::required(
            &blocks_path,
            "a pool needs at least one CIDR or range",
        ));
    }
    let mut parsed: Vec<(usize, AddressBlock)> = Vec::new();
    for (i, block) in pool.spec.blocks.iter().enumerate() {
        let path = blocks_path.index(i);
        match AddressBlock::parse(block) {
            Ok(parsed_block) => {
                for (j, earlier) in &parsed {
                    if earlier.overlaps(&parsed_block) {
                        errs.push(FieldError::invalid(
                            &path,
                            parsed_block.to_string(),
                            format!("overlaps spec.blocks[{j}] ({earlier})"),
                        ));
                    }
                }
                parsed.push((i, parsed_block));
            }
            Err(err) => errs.push(block_error(block, err, &path)),
        }
    }
    errs.extend(validate_selector(
        pool.spec.service_selector.as_ref(),
        &spec_path.child("serviceSelector"),
    ));
    errs.extend(validate_selector(
        pool.spec.namespace_selector.as_ref(),
        &spec_path.child("namespaceSelector"),
    ));
    errs
}

/// Checks a pool against the other pools of the cluster: no block may share an address
/// with a block of another pool (disabled pools included: their Services keep their
/// addresses). The pool itself (same name) is skipped among `others`, so an update can pass
/// the stored list as it is; pools that do not parse are skipped (they hand out nothing).
pub fn validate_pool_overlaps<'a>(
    pool: &LoadBalancerIPPool,
    others: impl IntoIterator<Item = &'a LoadBalancerIPPool>,
) -> Vec<FieldError> {
    let Ok(blocks) = pool.spec.address_blocks() else {
        return Vec::new();
    };
    let name = pool.metadata.name.as_deref().unwrap_or_default();
    let blocks_path = Path::new("spec").child("blocks");
    let mut errs = Vec::new();
    for other in others {
        let other_name = other.metadata.name.as_deref().unwrap_or_default();
        if other_name == name {
            continue;
        }
        let Ok(other_blocks) = other.spec.address_blocks() else {
            continue;
        };
        for (i, block) in blocks.iter().enumerate() {
            if let Some(clash) = other_blocks.iter().find(|b| b.overlaps(block)) {
                errs.push(FieldError::invalid(
                    blocks_path.index(i),
                    block.to_string(),
                    format!("overlaps {clash} of LoadBalancerIPPool \"{other_name}\""),
                ));
            }
        }
    }
    errs
}

fn block_error(block: &IpBlock, err: BlockError, path: &Path) -> FieldError {
    let text = |v: &Option<String>| v.clone().unwrap_or_default();
    match err {
        BlockError::Empty => FieldError::required(path, "one of `cidr` or `start` and `stop`"),
        BlockError::CidrAndRange => FieldError::forbidden(
            path,
            "`cidr` may not be set together with `start` or `stop`",
        ),
        BlockError::Missing(field) => {
            FieldError::required(path.child(field), "`start` and `stop` must both be set")
        }
        BlockError::BadCidr(detail) => {
            FieldError::invalid(path.child("cidr"), text(&block.cidr), detail)
        }
        BlockError::BadAddress(field) => {
            let value = if field == "start" {
                &block.start
            } else {
                &block.stop
            };
            FieldError::invalid(
                path.child(field),
                text(value),
                "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
            )
        }
        BlockError::MixedFamilies => FieldError::invalid(
            path.child("stop"),
            text(&block.stop),
            "must be of the same IP family as `start`",
        ),
        BlockError::Reversed => FieldError::invalid(
            path.child("stop"),
            text(&block.stop),
            "must not be before `start`",
        ),
        BlockError::TooLarge => FieldError::invalid(
            path,
            block
                .cidr
                .clone()
                .unwrap_or_else(|| format!("{}-{}", text(&block.start), text(&block.stop))),
            format!("must hold at most {MAX_BLOCK_ADDRESSES} addresses"),
        ),
    }
}

/// Upstream `ValidateLabelSelector` (`metav1validation`): label keys and values, known
/// operators, values required for `In`/`NotIn` and forbidden for `Exists`/`DoesNotExist`.
fn validate_selector(selector: Option<&LabelSelector>, path: &Path) -> Vec<FieldError> {
    let Some(selector) = selector else {
        return Vec::new();
    };
    let mut errs = validate_labels(selector.match_labels.as_ref(), &path.child("matchLabels"));
    let expressions = path.child("matchExpressions");
    for (i, requirement) in selector.match_expressions.iter().flatten().enumerate() {
        let path = expressions.index(i);
        let values = requirement.values.as_deref().unwrap_or_default();
        match requirement.operator.as_str() {
            "In" | "NotIn" if values.is_empty() => errs.push(FieldError::required(
                path.child("values"),
                "must be specified when `operator` is 'In' or 'NotIn'",
            )),
            "Exists" | "DoesNotExist" if !values.is_empty() => errs.push(FieldError::forbidden(
                path.child("values"),
                "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
            )),
            "In" | "NotIn" | "Exists" | "DoesNotExist" => {}
            other => errs.push(FieldError::not_supported(
                path.child("operator"),
                other,
                &["In", "NotIn", "Exists", "DoesNotExist"],
            )),
        }
        errs.extend(validate_qualified_name(
            &requirement.key,
            &path.child("key"),
        ));
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    fn pool(name: &str, blocks: &[&str]) -> LoadBalancerIPPool {
        let blocks = blocks
            .iter()
            .map(|b| match b.split_once('-') {
                Some((start, stop)) => IpBlock::range(start, stop),
                None => IpBlock::cidr(*b),
            })
            .collect();
        LoadBalancerIPPool::with_blocks(name, blocks)
    }

    fn messages(errs: &[FieldError]) -> Vec<String> {
        errs.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn a_good_pool_has_no_errors() {
        assert!(
            validate_pool(&pool("a", &["192.0.2.0/28", "2001:db8::10-2001:db8::20"])).is_empty()
        );
    }

    #[test]
    fn field_errors_name_the_block() {
        assert_eq!(
            messages(&validate_pool(&pool("a", &[]))),
            ["spec.blocks: Required value: a pool needs at least one CIDR or range"]
        );
        assert_eq!(
            messages(&validate_pool(&pool("a", &["192.0.2.0/28", "192.0.2.1/24"]))),
            ["spec.blocks[1].cidr: Invalid value: \"192.0.2.1/24\": must be in canonical form (\"192.0.2.0/24\")"]
        );
        assert_eq!(
            messages(&validate_pool(&pool("a", &["192.0.2.0/28", "192.0.2.8-192.0.2.20"]))),
            ["spec.blocks[1]: Invalid value: \"192.0.2.8-192.0.2.20\": overlaps spec.blocks[0] (192.0.2.0-192.0.2.15)"]
        );
        assert_eq!(
            messages(&validate_pool(&pool("a", &["192.0.2.9-192.0.2.1"]))),
            ["spec.blocks[0].stop: Invalid value: \"192.0.2.1\": must not be before `start`"]
        );
    }

    #[test]
    fn selectors_are_checked() {
        let mut p = pool("a", &["192.0.2.0/28"]);
        p.spec.service_selector = Some(LabelSelector {
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: "tier".into(),
                operator: "In".into(),
                values: None,
            }]),
            ..Default::default()
        });
        assert_eq!(
            messages(&validate_pool(&p)),
            ["spec.serviceSelector.matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn'"]
        );
    }

    #[test]
    fn overlaps_with_other_pools_name_the_other_pool() {
        let a = pool("a", &["192.0.2.0/28"]);
        let b = pool("b", &["192.0.2.12-192.0.2.20", "198.51.100.0/24"]);
        assert_eq!(
            messages(&validate_pool_overlaps(&b, [&a, &b])),
            ["spec.blocks[0]: Invalid value: \"192.0.2.12-192.0.2.20\": overlaps 192.0.2.0-192.0.2.15 of LoadBalancerIPPool \"a\""]
        );
        assert!(validate_pool_overlaps(&a, [&a]).is_empty());
    }
}
