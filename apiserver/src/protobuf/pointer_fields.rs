//! Go *pointer* fields of the served kinds, whose zero value (`false`, `0`, `""`) means something.
//!
//! Go's protobuf marshaller writes every non-pointer field, zero or not, while Go's JSON
//! marshaller omits zero `omitempty` fields; the server then cannot tell a non-pointer field
//! sent as `""` from one left out, so the decoder drops such zeros (`decode.rs`). A pointer field
//! is written only when set, and a set zero is a real value: `allocateLoadBalancerNodePorts:
//! false`, `ready: false`, `terminationGracePeriodSeconds: 0`. This list names those fields (by
//! message and JSON name) for the messages reachable from the served kinds, from the Go structs
//! in `k8s.io/api` (`core/v1/types.go`, `discovery/v1/types.go`, `coordination/v1/types.go`,
//! `admissionregistration/v1/types.go`), `k8s.io/apimachinery` (`meta/v1/types.go`) and
//! `k8s.io/apiextensions-apiserver` (`apiextensions/v1/types*.go`). Fields that are messages
//! (`*Time`, `*LabelSelector`) need no entry: a message is kept whenever it is on the wire.

/// `(message, JSON field)` pairs of Go pointer scalars (`*bool`, `*int32`, `*int64`, `*string`
/// and pointers to string types such as `*IPFamilyPolicy`).
pub static POINTER_FIELDS: &[(&str, &str)] = &[
    // apimachinery meta/v1
    (
        "apimachinery::pkg::apis::meta::v1::ObjectMeta",
        "deletionGracePeriodSeconds",
    ),
    (
        "apimachinery::pkg::apis::meta::v1::OwnerReference",
        "controller",
    ),
    (
        "apimachinery::pkg::apis::meta::v1::OwnerReference",
        "blockOwnerDeletion",
    ),
    // core/v1 ConfigMap, Secret
    ("api::core::v1::ConfigMap", "immutable"),
    ("api::core::v1::Secret", "immutable"),
    // core/v1 Service
    (
        "api::core::v1::ServiceSpec",
        "allocateLoadBalancerNodePorts",
    ),
    ("api::core::v1::ServiceSpec", "loadBalancerClass"),
    ("api::core::v1::ServiceSpec", "internalTrafficPolicy"),
    ("api::core::v1::ServiceSpec", "ipFamilyPolicy"),
    ("api::core::v1::ServiceSpec", "trafficDistribution"),
    ("api::core::v1::ServicePort", "appProtocol"),
    ("api::core::v1::ClientIpConfig", "timeoutSeconds"),
    ("api::core::v1::LoadBalancerIngress", "ipMode"),
    ("api::core::v1::PortStatus", "error"),
    // core/v1 Endpoints
    ("api::core::v1::EndpointAddress", "nodeName"),
    ("api::core::v1::EndpointPort", "appProtocol"),
    // core/v1 Pod
    ("api::core::v1::PodSpec", "terminationGracePeriodSeconds"),
    ("api::core::v1::PodSpec", "activeDeadlineSeconds"),
    ("api::core::v1::PodSpec", "automountServiceAccountToken"),
    ("api::core::v1::PodSpec", "shareProcessNamespace"),
    ("api::core::v1::PodSpec", "priority"),
    ("api::core::v1::PodSpec", "runtimeClassName"),
    ("api::core::v1::PodSpec", "enableServiceLinks"),
    ("api::core::v1::PodSpec", "preemptionPolicy"),
    ("api::core::v1::PodSpec", "setHostnameAsFQDN"),
    ("api::core::v1::PodSpec", "hostUsers"),
    ("api::core::v1::PodSpec", "hostnameOverride"),
    ("api::core::v1::PodSecurityContext", "runAsUser"),
    ("api::core::v1::PodSecurityContext", "runAsGroup"),
    ("api::core::v1::PodSecurityContext", "runAsNonRoot"),
    ("api::core::v1::PodSecurityContext", "fsGroup"),
    ("api::core::v1::PodSecurityContext", "fsGroupChangePolicy"),
    (
        "api::core::v1::PodSecurityContext",
        "supplementalGroupsPolicy",
    ),
    ("api::core::v1::PodSecurityContext", "seLinuxChangePolicy"),
    ("api::core::v1::SecurityContext", "privileged"),
    ("api::core::v1::SecurityContext", "runAsUser"),
    ("api::core::v1::SecurityContext", "runAsGroup"),
    ("api::core::v1::SecurityContext", "runAsNonRoot"),
    ("api::core::v1::SecurityContext", "readOnlyRootFilesystem"),
    ("api::core::v1::SecurityContext", "allowPrivilegeEscalation"),
    ("api::core::v1::SecurityContext", "procMount"),
    (
        "api::core::v1::WindowsSecurityContextOptions",
        "gmsaCredentialSpecName",
    ),
    (
        "api::core::v1::WindowsSecurityContextOptions",
        "gmsaCredentialSpec",
    ),
    (
        "api::core::v1::WindowsSecurityContextOptions",
        "runAsUserName",
    ),
    (
        "api::core::v1::WindowsSecurityContextOptions",
        "hostProcess",
    ),
    ("api::core::v1::SeccompProfile", "localhostProfile"),
    ("api::core::v1::AppArmorProfile", "localhostProfile"),
    ("api::core::v1::Container", "restartPolicy"),
    ("api::core::v1::EphemeralContainerCommon", "restartPolicy"),
    ("api::core::v1::VolumeMount", "mountPropagation"),
    ("api::core::v1::VolumeMount", "recursiveReadOnly"),
    ("api::core::v1::Lifecycle", "stopSignal"),
    ("api::core::v1::Probe", "terminationGracePeriodSeconds"),
    ("api::core::v1::GrpcAction", "service"),
    ("api::core::v1::Toleration", "tolerationSeconds"),
    ("api::core::v1::TopologySpreadConstraint", "minDomains"),
    (
        "api::core::v1::TopologySpreadConstraint",
        "nodeAffinityPolicy",
    ),
    (
        "api::core::v1::TopologySpreadConstraint",
        "nodeTaintsPolicy",
    ),
    ("api::core::v1::PodDnsConfigOption", "value"),
    ("api::core::v1::PodResourceClaim", "resourceClaimName"),
    (
        "api::core::v1::PodResourceClaim",
        "resourceClaimTemplateName",
    ),
    ("api::core::v1::ConfigMapKeySelector", "optional"),
    ("api::core::v1::SecretKeySelector", "optional"),
    ("api::core::v1::FileKeySelector", "optional"),
    ("api::core::v1::ConfigMapEnvSource", "optional"),
    ("api::core::v1::SecretEnvSource", "optional"),
    ("api::core::v1::SecretVolumeSource", "defaultMode"),
    ("api::core::v1::SecretVolumeSource", "optional"),
    ("api::core::v1::ConfigMapVolumeSource", "defaultMode"),
    ("api::core::v1::ConfigMapVolumeSource", "optional"),
    ("api::core::v1::SecretProjection", "optional"),
    ("api::core::v1::ConfigMapProjection", "optional"),
    ("api::core::v1::KeyToPath", "mode"),
    ("api::core::v1::ProjectedVolumeSource", "defaultMode"),
    ("api::core::v1::DownwardAPIVolumeSource", "defaultMode"),
    ("api::core::v1::DownwardAPIVolumeFile", "mode"),
    (
        "api::core::v1::ServiceAccountTokenProjection",
        "expirationSeconds",
    ),
    ("api::core::v1::ClusterTrustBundleProjection", "name"),
    ("api::core::v1::ClusterTrustBundleProjection", "signerName"),
    ("api::core::v1::ClusterTrustBundleProjection", "optional"),
    ("api::core::v1::HostPathVolumeSource", "type"),
    ("api::core::v1::CSIVolumeSource", "readOnly"),
    ("api::core::v1::CSIVolumeSource", "fsType"),
    ("api::core::v1::FcVolumeSource", "lun"),
    ("api::core::v1::AzureDiskVolumeSource", "cachingMode"),
    ("api::core::v1::AzureDiskVolumeSource", "fsType"),
    ("api::core::v1::AzureDiskVolumeSource", "readOnly"),
    ("api::core::v1::AzureDiskVolumeSource", "kind"),
    ("api::core::v1::IscsiVolumeSource", "initiatorName"),
    (
        "api::core::v1::PersistentVolumeClaimSpec",
        "storageClassName",
    ),
    ("api::core::v1::PersistentVolumeClaimSpec", "volumeMode"),
    (
        "api::core::v1::PersistentVolumeClaimSpec",
        "volumeAttributesClassName",
    ),
    ("api::core::v1::TypedLocalObjectReference", "apiGroup"),
    ("api::core::v1::TypedObjectReference", "apiGroup"),
    ("api::core::v1::TypedObjectReference", "namespace"),
    ("api::core::v1::ContainerStatus", "started"),
    ("api::core::v1::ContainerStatus", "stopSignal"),
    // core/v1 Node
    ("api::core::v1::NodeSwapStatus", "capacity"),
    (
        "api::core::v1::NodeRuntimeHandlerFeatures",
        "recursiveReadOnlyMounts",
    ),
    (
        "api::core::v1::NodeRuntimeHandlerFeatures",
        "userNamespaces",
    ),
    ("api::core::v1::NodeFeatures", "supplementalGroupsPolicy"),
    // discovery/v1 EndpointSlice
    ("api::discovery::v1::Endpoint", "hostname"),
    ("api::discovery::v1::Endpoint", "nodeName"),
    ("api::discovery::v1::Endpoint", "zone"),
    ("api::discovery::v1::EndpointConditions", "ready"),
    ("api::discovery::v1::EndpointConditions", "serving"),
    ("api::discovery::v1::EndpointConditions", "terminating"),
    ("api::discovery::v1::EndpointPort", "name"),
    ("api::discovery::v1::EndpointPort", "protocol"),
    ("api::discovery::v1::EndpointPort", "port"),
    ("api::discovery::v1::EndpointPort", "appProtocol"),
    // coordination/v1 Lease
    ("api::coordination::v1::LeaseSpec", "holderIdentity"),
    ("api::coordination::v1::LeaseSpec", "leaseDurationSeconds"),
    ("api::coordination::v1::LeaseSpec", "leaseTransitions"),
    ("api::coordination::v1::LeaseSpec", "strategy"),
    ("api::coordination::v1::LeaseSpec", "preferredHolder"),
    // admissionregistration/v1 ValidatingWebhookConfiguration
    (
        "api::admissionregistration::v1::ValidatingWebhook",
        "failurePolicy",
    ),
    (
        "api::admissionregistration::v1::ValidatingWebhook",
        "matchPolicy",
    ),
    (
        "api::admissionregistration::v1::ValidatingWebhook",
        "sideEffects",
    ),
    (
        "api::admissionregistration::v1::ValidatingWebhook",
        "timeoutSeconds",
    ),
    ("api::admissionregistration::v1::Rule", "scope"),
    ("api::admissionregistration::v1::WebhookClientConfig", "url"),
    ("api::admissionregistration::v1::ServiceReference", "path"),
    ("api::admissionregistration::v1::ServiceReference", "port"),
    // apiextensions/v1 CustomResourceDefinition
    (
        "apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinitionVersion",
        "deprecationWarning",
    ),
    (
        "apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceSubresourceScale",
        "labelSelectorPath",
    ),
    (
        "apiextensions_apiserver::pkg::apis::apiextensions::v1::WebhookClientConfig",
        "url",
    ),
    (
        "apiextensions_apiserver::pkg::apis::apiextensions::v1::ServiceReference",
        "path",
    ),
    (
        "apiextensions_apiserver::pkg::apis::apiextensions::v1::ServiceReference",
        "port",
    ),
    (
        "apiextensions_apiserver::pkg::apis::apiextensions::v1::ValidationRule",
        "reason",
    ),
    (
        "apiextensions_apiserver::pkg::apis::apiextensions::v1::ValidationRule",
        "optionalOldSelf",
    ),
    (
        "apiextensions_apiserver::pkg::apis::apiextensions::v1::JsonSchemaProps",
        "$ref",
    ),
    (
        "apiextensions_apiserver::pkg::apis::apiextensions::v1::JsonSchemaProps",
        "maximum",
    ),
    (
        "apiextensions_apiserver::pkg::apis::apiextensions::v1::JsonSchemaProps",
        "minimum",
    ),
    (
        "apiextensions_apiserver::pkg::apis::apiextensions::v1::JsonSchemaProps",
        "maxLength",
    ),
    (
        "apiextensions_apiserver::pkg::apis::apiextensions::v1::JsonSchemaProps",
        "minLength",
    ),
    (
        "apiextensions_apiserver::pkg::apis::apiextensions::v1::JsonSchemaProps",
        "maxItems",
    ),
    (
        "apiextensions_apiserver::pkg::apis::apiextensions::v1::JsonSchemaProps",
        "minItems",
    ),
    (
        "apiextensions_apiserver::pkg::apis::apiextensions::v1::JsonSchemaProps",
        "multipleOf",
    ),
    (
        "apiextensions_apiserver::pkg::apis::apiextensions::v1::JsonSchemaProps",
        "maxProperties",
    ),
    (
        "apiextensions_apiserver::pkg::apis::apiextensions::v1::JsonSchemaProps",
        "minProperties",
    ),
    (
        "apiextensions_apiserver::pkg::apis::apiextensions::v1::JsonSchemaProps",
        "x-kubernetes-preserve-unknown-fields",
    ),
    (
        "apiextensions_apiserver::pkg::apis::apiextensions::v1::JsonSchemaProps",
        "x-kubernetes-list-type",
    ),
    (
        "apiextensions_apiserver::pkg::apis::apiextensions::v1::JsonSchemaProps",
        "x-kubernetes-map-type",
    ),
];

/// Whether `message.field` is a Go pointer scalar, whose zero value is kept.
pub fn is_pointer(message: &str, field: &str) -> bool {
    POINTER_FIELDS
        .iter()
        .any(|(m, f)| *m == message && *f == field)
}
