//! Spec fields whose Pachyderm values form a closed set, as Rust enums.
//!
//! Each enum is written and read as Pachyderm spells it (`every_job`, `NodePort`, `CSV`...),
//! case-sensitively. A value outside the set still parses, as `Unknown(written)`, so that
//! validation can report it with its field path and the allowed values, next to every other
//! finding, instead of failing the parse. In the JSON Schema these fields stay plain strings.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Declares a closed-set enum with an `Unknown(String)` variant, its spellings and serde.
macro_rules! closed_set {
    (
        $(#[$meta:meta])*
        $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $text:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
            /// A value outside Pachyderm's set, kept as written (validation rejects it).
            Unknown(String),
        }

        impl $name {
            /// Every value Pachyderm accepts, spelled as in a spec.
            pub const ALLOWED: &'static [&'static str] = &[$($text),+];

            /// Reads a written value; anything outside [`Self::ALLOWED`] is `Unknown`.
            pub fn parse(text: &str) -> Self {
                match text {
                    $( $text => Self::$variant, )+
                    other => Self::Unknown(other.to_string()),
                }
            }

            /// The value as written in a spec.
            pub fn as_str(&self) -> &str {
                match self {
                    $( Self::$variant => $text, )+
                    Self::Unknown(text) => text,
                }
            }

            /// Whether the value is one of [`Self::ALLOWED`].
            pub fn is_known(&self) -> bool {
                !matches!(self, Self::Unknown(_))
            }

            /// Whether the value was written as an empty string (which Pachyderm reads as unset).
            pub fn is_blank(&self) -> bool {
                self.as_str().is_empty()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                self.as_str()
            }
        }

        impl From<&str> for $name {
            fn from(text: &str) -> Self {
                Self::parse(text)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = String::deserialize(deserializer)?;
                Ok(Self::parse(&text))
            }
        }
    };
}

closed_set! {
    /// `reprocess_spec`: which datums a job runs again.
    ReprocessSpec {
        /// `until_success` (the default): skip datums that succeeded before.
        UntilSuccess = "until_success",
        /// `every_job`: run every datum in every job.
        EveryJob = "every_job",
    }
}

impl Default for ReprocessSpec {
    /// `until_success`, Pachyderm's default.
    fn default() -> Self {
        ReprocessSpec::UntilSuccess
    }
}

closed_set! {
    /// `input.pfs.repo_type`: which of a repo's kinds the input reads.
    RepoType {
        /// `user` (the default): the repo's data.
        User = "user",
        /// `meta`: the repo's metadata.
        Meta = "meta",
        /// `spec`: the pipeline specs.
        Spec = "spec",
    }
}

closed_set! {
    /// `service.type`: how a service is exposed.
    ServiceType {
        /// `ClusterIP`.
        ClusterIp = "ClusterIP",
        /// `LoadBalancer`.
        LoadBalancer = "LoadBalancer",
        /// `NodePort` (the default).
        NodePort = "NodePort",
    }
}

closed_set! {
    /// `egress.sql_database.file_format.type`: the format of the output files.
    FileFormatType {
        /// `CSV`.
        Csv = "CSV",
        /// `JSON`.
        Json = "JSON",
        /// `PARQUET`.
        Parquet = "PARQUET",
    }
}

closed_set! {
    /// `tolerations[].operator`: how a toleration compares the taint's value.
    TolerationOperator {
        /// `EXISTS`: any value.
        Exists = "EXISTS",
        /// `EQUAL`: the toleration's `value`.
        Equal = "EQUAL",
    }
}

closed_set! {
    /// `tolerations[].effect`: which taint effect a toleration matches.
    TolerationEffect {
        /// `ALL_EFFECTS`.
        AllEffects = "ALL_EFFECTS",
        /// `NO_SCHEDULE`.
        NoSchedule = "NO_SCHEDULE",
        /// `PREFER_NO_SCHEDULE`.
        PreferNoSchedule = "PREFER_NO_SCHEDULE",
        /// `NO_EXECUTE`.
        NoExecute = "NO_EXECUTE",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_round_trip_and_unknown_values_are_kept() {
        for text in ReprocessSpec::ALLOWED {
            let value = ReprocessSpec::parse(text);
            assert!(value.is_known());
            assert_eq!(serde_json::to_string(&value).unwrap(), format!("{text:?}"));
        }
        let odd: ServiceType = serde_json::from_str("\"nodeport\"").unwrap();
        assert_eq!(odd, ServiceType::Unknown("nodeport".into()));
        assert_eq!(serde_json::to_string(&odd).unwrap(), "\"nodeport\"");
        assert!(TolerationEffect::parse("").is_blank());
    }
}
