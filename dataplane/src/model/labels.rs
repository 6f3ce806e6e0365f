//! Label and annotation keys the proxy reads. Each is defined once, in
//! [`svcplane_rules::well_known`], with the upstream constant it mirrors.

pub use svcplane_rules::well_known::{
    ANNOTATION_LAST_CHANGE_TRIGGER_TIME, LABEL_HEADLESS, LABEL_SERVICE_NAME,
    LABEL_SERVICE_PROXY_NAME, LABEL_TOPOLOGY_ZONE,
};
