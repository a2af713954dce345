//! Training an [`IntentModel`]: validate the examples, calibrate on held-out parts of
//! them ([`super::calibrate`]), then fit the final head and the out-of-scope distance
//! ([`super::distance`]) on every example and keep every embedding for the
//! nearest-example signals.

use std::collections::{BTreeMap, BTreeSet};

use super::calibrate::calibrate;
use super::distance::Mahalanobis;
use super::{Example, IntentError, IntentModel, TrainConfig};
use crate::embed::Embedder;
use crate::head::{self, FitParams};

impl IntentModel {
    /// Embeds the examples and trains on them; see the module docs.
    ///
    /// With fewer than three intents no intent can be hidden during calibration, so the
    /// threshold is 0 (never hand off) unless set with [`IntentModel::with_threshold`].
    pub fn train(embedder: &Embedder, examples: &[Example], config: &TrainConfig) -> Result<Self, IntentError> {
        if let Some(index) = examples.iter().position(|e| e.intent.trim().is_empty()) {
            return Err(IntentError::EmptyIntent { index });
        }
        let texts: Vec<&str> = examples.iter().map(|e| e.text.as_str()).collect();
        let embeddings = embedder.embed(&texts)?;
        let intents: Vec<&str> = examples.iter().map(|e| e.intent.as_str()).collect();
        Self::train_on_embeddings(&embeddings, &intents, config)
    }

    /// Trains on embeddings already computed (unit vectors from [`Embedder::embed`]).
    pub fn train_on_embeddings<S: AsRef<str>>(embeddings: &[Vec<f32>], intents: &[S], config: &TrainConfig) -> Result<Self, IntentError> {
        if embeddings.is_empty() {
            return Err(IntentError::NoExamples);
        }
        if embeddings.len() != intents.len() {
            return Err(IntentError::InvalidModel(format!("{} embeddings for {} intents", embeddings.len(), intents.len())));
        }
        let dim = embeddings[0].len();
        if let Some(index) = embeddings.iter().position(|e| e.len() != dim) {
            return Err(IntentError::DimensionMismatch { index, found: embeddings[index].len(), expected: dim });
        }
        if let Some(index) = intents.iter().position(|i| i.as_ref().trim().is_empty()) {
            return Err(IntentError::EmptyIntent { index });
        }
        let names: Vec<String> = intents.iter().map(|i| i.as_ref().to_owned()).collect::<BTreeSet<_>>().into_iter().collect();
        if names.len() < 2 {
            return Err(IntentError::TooFewIntents { found: names.len() });
        }
        let index: BTreeMap<&str, usize> = names.iter().enumerate().map(|(i, n)| (n.as_str(), i)).collect();
        let ys: Vec<usize> = intents.iter().map(|i| index[i.as_ref()]).collect();
        let xs: Vec<&[f32]> = embeddings.iter().map(Vec::as_slice).collect();

        let calibration = calibrate(&xs, &ys, names.len(), super::out_of_scope_index(&names), config)?;
        let head = head::fit(&xs, &ys, names.len(), &fit_params(config, dim, 0))?;
        let distance = Mahalanobis::fit(&xs, &ys, names.len())?;
        Ok(Self {
            intents: names,
            head,
            exemplars: super::Exemplars::new(embeddings.concat(), dim)?,
            exemplar_intents: ys.iter().map(|&y| y as u32).collect(),
            threshold: calibration.threshold,
            calibration,
            distance: Some(distance),
        })
    }
}

pub(super) fn fit_params(config: &TrainConfig, dim: usize, round: u64) -> FitParams {
    FitParams {
        epochs: config.epochs,
        batch_size: config.batch_size,
        learning_rate: config.learning_rate,
        weight_decay: config.weight_decay,
        // Unit vectors have coordinates of about 1/√dim; scale them to about 1.
        input_scale: (dim as f32).sqrt(),
        label_smoothing: config.label_smoothing,
        seed: config.seed.wrapping_add(round),
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{blobs, quick};
    use super::*;

    #[test]
    fn learns_separable_intents_and_hands_off_an_unseen_direction() {
        let (xs, ys) = blobs(6, 12, 16);
        let model = IntentModel::train_on_embeddings(&xs, &ys, &quick()).unwrap();
        assert_eq!(model.intents().len(), 6);
        for (x, y) in xs.iter().zip(&ys) {
            assert_eq!(model.predict(x).intent.as_deref(), Some(y.as_str()));
        }
        // A direction no intent points to.
        let mut unseen = vec![0.0f32; 16];
        unseen[12] = 1.0;
        let p = model.predict(&unseen);
        assert_eq!(p.intent, None, "{p:?} threshold {}", model.threshold());
        assert!(model.calibration().oos_rows > 0);
        assert!(model.threshold() > 0.0);
    }

    #[test]
    fn rejects_bad_training_sets() {
        let one = vec![vec![1.0f32, 0.0]];
        assert!(matches!(IntentModel::train_on_embeddings(&one, &["a"], &quick()), Err(IntentError::TooFewIntents { found: 1 })));
        let empty: Vec<Vec<f32>> = Vec::new();
        let no: [&str; 0] = [];
        assert!(matches!(IntentModel::train_on_embeddings(&empty, &no, &quick()), Err(IntentError::NoExamples)));
        let ragged = vec![vec![1.0f32, 0.0], vec![1.0]];
        assert!(matches!(
            IntentModel::train_on_embeddings(&ragged, &["a", "b"], &quick()),
            Err(IntentError::DimensionMismatch { index: 1, .. })
        ));
        assert!(matches!(
            IntentModel::train_on_embeddings(&[vec![1.0f32], vec![0.0]], &["a", " "], &quick()),
            Err(IntentError::EmptyIntent { index: 1 })
        ));
    }
}
