//! The one table of Kubernetes kinds: [`kinds!`] turns one list of `Variant(Type)` lines into
//! the [`Object`](super::Object) enum, the fieldless [`Kind`] enum in render order, and each
//! kind's API coordinates read from its k8s-openapi type.
//!
//! Adding a kind is one line in `objects/mod.rs`; the compiler then asks for its readiness
//! rule, whether it is prunable and its setting (exhaustive matches on [`Kind`]).

use std::any::TypeId;

/// A kind's API coordinates, from its type's `k8s_openapi::Resource` constants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KindMeta {
    /// `kind`, e.g. `Deployment`.
    pub kind: &'static str,
    /// API group, `""` for the core group.
    pub group: &'static str,
    /// API version within the group, e.g. `v1`.
    pub version: &'static str,
    /// `apiVersion`, e.g. `apps/v1`.
    pub api_version: &'static str,
    /// The resource's plural, e.g. `deployments`.
    pub plural: &'static str,
    /// Whether objects of the kind live in a namespace.
    pub namespaced: bool,
}

impl KindMeta {
    /// The coordinates of `T`.
    pub fn of<T: k8s_openapi::Resource + 'static>() -> Self {
        Self {
            kind: T::KIND,
            group: T::GROUP,
            version: T::VERSION,
            api_version: T::API_VERSION,
            plural: T::URL_PATH_SEGMENT,
            namespaced: TypeId::of::<T::Scope>()
                == TypeId::of::<k8s_openapi::NamespaceResourceScope>(),
        }
    }

    /// `Kind` for the core group, `Kind.group` otherwise (the ApplySet's group-kind notation).
    pub fn group_kind(&self) -> String {
        if self.group.is_empty() {
            self.kind.to_owned()
        } else {
            format!("{}.{}", self.kind, self.group)
        }
    }
}

/// When an applied object counts as ready, by kstatus rules: a status is read only once the
/// controller's `observedGeneration` has caught up with the object's generation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Readiness {
    /// Ready once it exists (no controller reports on it).
    Exists,
    /// Ready once its controller has observed the applied generation.
    ObservedGeneration,
    /// A Namespace: ready while its phase is `Active`.
    NamespaceActive,
    /// A Deployment: rolled out (every desired replica updated and available, none old).
    Rollout,
}

/// Defines `Object` (one variant per kind, holding its typed value) and `Kind` (the same
/// variants without data, `Kind::ALL` in the order given: render and apply order).
macro_rules! kinds {
    ($( $(#[doc = $doc:literal])* $variant:ident($ty:ty), )+) => {
        /// One Kubernetes object, typed.
        #[expect(
            clippy::large_enum_variant,
            reason = "a handful of objects per render; boxing would complicate every match on them"
        )]
        #[derive(Clone, Debug, PartialEq)]
        pub enum Object {
            $( $(#[doc = $doc])* $variant($ty), )+
        }

        /// The kind of an [`Object`], without its value.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Kind {
            $( $(#[doc = $doc])* $variant, )+
        }

        impl Kind {
            /// Every kind, in render and apply order: what others depend on comes first.
            pub const ALL: &'static [Kind] = &[$(Kind::$variant),+];

            /// The kind's API coordinates.
            pub fn meta(self) -> $crate::objects::KindMeta {
                match self {
                    $( Kind::$variant => $crate::objects::KindMeta::of::<$ty>(), )+
                }
            }

            /// The kind named `kind` (e.g. `Deployment`), if `infra` builds it.
            pub fn from_name(kind: &str) -> Option<Kind> {
                Kind::ALL.iter().copied().find(|k| k.meta().kind == kind)
            }

            /// Position in [`Kind::ALL`].
            pub fn rank(self) -> usize {
                self as usize
            }
        }

        impl Object {
            /// The object's [`Kind`].
            pub fn kind_of(&self) -> Kind {
                match self {
                    $( Object::$variant(_) => Kind::$variant, )+
                }
            }

            /// The object's metadata.
            pub fn metadata(&self) -> &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                match self {
                    $( Object::$variant(o) => &o.metadata, )+
                }
            }
        }

        impl Object {
            /// The object `value` holds (a JSON object with `apiVersion` and `kind`), typed;
            /// `Err` names what is wrong: an unknown kind, another `apiVersion`, bad fields.
            pub fn from_json(value: serde_json::Value) -> Result<Object, String> {
                let kind = value["kind"].as_str().unwrap_or_default().to_owned();
                let api_version = value["apiVersion"].as_str().unwrap_or_default().to_owned();
                let found = Kind::from_name(&kind)
                    .ok_or_else(|| format!("`{kind}` is not a kind infra builds"))?;
                if found.meta().api_version != api_version {
                    return Err(format!(
                        "{kind} is {} here, not `{api_version}`",
                        found.meta().api_version
                    ));
                }
                let typed = |e: serde_json::Error| format!("{kind}: {e}");
                Ok(match found {
                    $( Kind::$variant => Object::$variant(serde_json::from_value(value).map_err(typed)?), )+
                })
            }
        }

        impl serde::Serialize for Object {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                match self {
                    $( Object::$variant(o) => o.serialize(serializer), )+
                }
            }
        }
    };
}

pub(crate) use kinds;
