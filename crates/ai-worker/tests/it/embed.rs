use std::sync::Arc;

use jamuna_ai_worker::embed::cosine;
use jamuna_ai_worker::{AsyncEmbedder, bench_embed};

use crate::embedder;

const REFERENCE_SENTENCES: [&str; 3] =
    ["I am still waiting on my card?", "How do I reset my password?", "The weather in Dhaka is hot and humid during the monsoon season."];

/// First 8 dimensions from sentence-transformers 6.2.0 (torch 2.15, CPU) with the same
/// files: `SentenceTransformer(dir).encode(s, normalize_embeddings=True)`.
const REFERENCE_PREFIXES: [[f32; 8]; 3] = [
    [-0.035352, -0.042137, -0.002757, 0.031937, 0.02319, -0.018297, 0.030449, -0.02911],
    [0.006903, -0.063023, -0.072044, -0.032496, -0.042709, 0.070429, 0.009074, 0.015408],
    [0.002194, -0.011235, 0.061648, 0.084397, -0.004758, -0.011582, 0.011462, -0.113296],
];

#[test]
fn matches_the_sentence_transformers_reference() {
    let e = embedder().embed(&REFERENCE_SENTENCES).unwrap();
    for (got, want) in e.iter().zip(REFERENCE_PREFIXES) {
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 2e-4, "got {:?}, want {want:?}", &got[..8]);
        }
    }
}

/// Whole f32 embeddings from sentence-transformers (tests/fixtures/st_reference.json, made by
/// st_reference.py beside it): short, long, one-word and non-English sentences, embedded
/// in one batch and one at a time, each within cosine 0.999 of the reference.
#[test]
fn whole_embeddings_match_the_sentence_transformers_f32_reference() {
    let text = std::fs::read_to_string(crate::fixture("st_reference.json")).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let cases: Vec<(String, Vec<f32>)> = json["sentences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let v = c["embedding"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect();
            (c["text"].as_str().unwrap().to_owned(), v)
        })
        .collect();
    assert_eq!(cases.len(), 6);
    let texts: Vec<&str> = cases.iter().map(|(t, _)| t.as_str()).collect();
    let batch = embedder().embed(&texts).unwrap();
    for ((text, want), got) in cases.iter().zip(&batch) {
        assert_eq!(got.len(), want.len());
        let c = cosine(got, want);
        assert!(c >= 0.999, "{text:?}: cosine {c} to the reference (batch)");
        let alone = embedder().embed_one(text).unwrap();
        let c = cosine(&alone, want);
        assert!(c >= 0.999, "{text:?}: cosine {c} to the reference (alone)");
    }
}

/// The default precision (`auto`) on a CPU with AMX runs the products in bf16: every
/// embedding stays within cosine 0.995 of the f32 one (short, long, one-word and
/// non-English sentences, in a batch and alone) and within 0.999 of it on average.
/// Elsewhere it must have stayed in f32.
#[test]
fn bf16_embeddings_stay_within_0_995_of_f32() {
    let auto = jamuna_ai_worker::Embedder::load(&crate::model_dir()).unwrap();
    if auto.precision() == "f32" {
        assert!(!jamuna_amx::available(), "AMX is available but the default encoder runs in f32");
        eprintln!("no AMX bf16 on this machine: the default encoder runs in f32 (nothing to compare)");
        return;
    }
    assert_eq!(auto.precision(), "bf16 (AMX)");
    let mut texts = jamuna_ai_worker::bench::mixed_sentences(150);
    texts.extend(REFERENCE_SENTENCES.iter().map(|s| s.to_string()));
    texts.extend(["refund".to_owned(), "¿Dónde está mi tarjeta?".to_owned(), "word ".repeat(300)]);
    let f32s = embedder().embed(&texts).unwrap();
    let bf16s = auto.embed(&texts).unwrap();
    let cosines: Vec<f32> = f32s.iter().zip(&bf16s).map(|(a, b)| cosine(a, b)).collect();
    let (worst, at) = cosines.iter().zip(&texts).fold((1.0f32, ""), |w, (&c, t)| if c < w.0 { (c, t.as_str()) } else { w });
    assert!(worst >= 0.995, "{at:?}: cosine {worst} between bf16 and f32");
    let mean = cosines.iter().sum::<f32>() / cosines.len() as f32;
    assert!(mean >= 0.999, "mean cosine {mean} between bf16 and f32");
    for text in ["refund", REFERENCE_SENTENCES[2]] {
        let c = cosine(&auto.embed_one(text).unwrap(), &embedder().embed_one(text).unwrap());
        assert!(c >= 0.995, "{text:?} alone: cosine {c}");
    }
}

#[test]
fn embeddings_are_unit_vectors_of_the_model_dimension() {
    let e = embedder().embed(&["hello", "", "Why was I charged twice for one coffee?"]).unwrap();
    assert_eq!(embedder().dim(), 384);
    for v in &e {
        assert_eq!(v.len(), 384);
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4, "norm {norm}");
    }
}

#[test]
fn paraphrases_are_closer_than_unrelated_sentences() {
    let e = embedder()
        .embed(&[
            "My card has not arrived yet.",
            "I am still waiting for my card to be delivered.",
            "What is the capital of France?",
            "How do I change my PIN?",
        ])
        .unwrap();
    let para = cosine(&e[0], &e[1]);
    assert!(para > cosine(&e[0], &e[2]) + 0.2, "paraphrase {para}");
    assert!(para > cosine(&e[0], &e[3]), "paraphrase {para}");
    assert!(para > 0.6, "paraphrase {para}");
}

#[test]
fn a_batch_equals_its_members_embedded_alone_in_input_order() {
    // Mixed lengths, so the batch is sorted, padded and split internally.
    let mut texts: Vec<String> = jamuna_ai_worker::bench::mixed_sentences(70);
    texts.insert(3, "refund".to_owned());
    texts.push("word ".repeat(400)); // truncated to the model's maximum
    let batch = embedder().embed(&texts).unwrap();
    assert_eq!(batch.len(), texts.len());
    for (i, text) in texts.iter().enumerate().step_by(7).chain([(3, &texts[3]), (71, &texts[71])]) {
        let alone = embedder().embed_one(text).unwrap();
        let diff = alone.iter().zip(&batch[i]).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        assert!(diff < 1e-4, "text {i} differs by {diff}");
    }
    assert!(embedder().embed::<&str>(&[]).unwrap().is_empty());
}

#[test]
fn async_embedder_runs_on_the_blocking_pool() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    // A current-thread runtime has no worker to spare: this only completes because the
    // model runs on the blocking pool while the runtime thread waits.
    let embedder = Arc::new(jamuna_ai_worker::Embedder::load(&crate::model_dir()).unwrap());
    let async_embedder = AsyncEmbedder::new(Arc::clone(&embedder));
    let other = async_embedder.clone();
    let (a, b) = rt.block_on(async {
        tokio::join!(
            async_embedder.embed(vec!["Where is my refund?".to_owned()]),
            other.embed(vec!["I lost my card".to_owned(), "hello".to_owned()]),
        )
    });
    assert_eq!(a.unwrap(), embedder.embed(&["Where is my refund?"]).unwrap());
    assert_eq!(b.unwrap(), embedder.embed(&["I lost my card", "hello"]).unwrap());
}

#[test]
fn bench_reports_figures_without_asserting_speed() {
    let report = bench_embed(embedder(), &jamuna_ai_worker::bench::mixed_sentences(8)).unwrap();
    assert_eq!((report.sentences, report.single_samples), (8, 8));
    assert!(report.sentences_per_second > 0.0);
    assert!(report.single_p50_ms <= report.single_p99_ms);
    println!("{report}");
}
