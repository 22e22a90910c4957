//! Reading `model` (and what metering needs) from a JSON request body, without parsing the
//! rest into values.

use std::borrow::Cow;

use crate::error_answer::{ProxyError, Result};
use crate::metering::Facts;

/// Reads `model` from a JSON body, or says why not (the position of a syntax error only: the
/// body itself is never echoed).
#[cfg(test)]
pub fn model_of(body: &[u8]) -> Result<Cow<'_, str>> {
    read(body).map(|(model, _)| model)
}

/// Reads `model` and the metering facts in one pass; everything else passes through
/// untouched, unparsed into values (serde still checks that the whole body is well-formed).
pub fn read(body: &[u8]) -> Result<(Cow<'_, str>, Facts<'_>)> {
    match Facts::read(body) {
        Ok(mut facts) => match facts.model.take() {
            Some(model) => Ok((model, facts)),
            None => Err(ProxyError::MissingModel),
        },
        Err(e) if e.is_data() => Err(ProxyError::MissingModel),
        Err(e) => Err(ProxyError::InvalidJson {
            line: e.line(),
            column: e.column(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn reads_model_or_says_why_not() {
        assert_eq!(model_of(br#"{"model":"a","messages":[]}"#).unwrap(), "a");
        assert_eq!(model_of(br#"{"model":"a\u0062"}"#).unwrap(), "ab");
        assert!(matches!(model_of(b"{}"), Err(ProxyError::MissingModel)));
        assert!(matches!(
            model_of(br#"{"model":5}"#),
            Err(ProxyError::MissingModel)
        ));
        assert!(matches!(
            model_of(b"{\"model\":"),
            Err(ProxyError::InvalidJson { line: 1, .. })
        ));
        assert!(matches!(
            model_of(br#"{"model":"a"} x"#),
            Err(ProxyError::InvalidJson { .. })
        ));
    }

    proptest! {
        /// Whatever else a well-formed request holds, and wherever `model` sits, it is found
        /// and decoded exactly as serde_json decodes the whole document.
        #[test]
        fn finds_the_model_anywhere(
            model in "\\PC{0,40}",
            before in proptest::collection::btree_map("[a-ln-z_]{1,10}", any::<i64>(), 0..4),
            after in proptest::collection::vec("\\PC{0,20}", 0..4),
        ) {
            let mut doc = serde_json::Map::new();
            for (k, v) in &before {
                doc.insert(k.clone(), (*v).into());
            }
            doc.insert("model".into(), model.clone().into());
            doc.insert("messages".into(), after.iter().map(|c| serde_json::json!({"role":"user","content":c})).collect());
            let body = serde_json::to_vec(&doc).unwrap();
            prop_assert_eq!(model_of(&body).unwrap(), model);
        }

        /// Arbitrary bytes never panic, and an error is one of the two client errors.
        #[test]
        fn arbitrary_bytes_give_a_client_error_or_a_model(body in proptest::collection::vec(any::<u8>(), 0..200)) {
            match model_of(&body) {
                Ok(_) | Err(ProxyError::MissingModel | ProxyError::InvalidJson { .. }) => {}
                Err(other) => prop_assert!(false, "unexpected {other:?}"),
            }
        }
    }
}
