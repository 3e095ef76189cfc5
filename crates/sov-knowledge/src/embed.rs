//! The embedding seam: what the corpus needs from a model that turns texts into vectors.

use serde::{Deserialize, Serialize};

/// Which embedding model made a corpus's vectors: stored in the signed manifest, compared at
/// every add and search.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmbedderId {
    /// The model's name in the model store.
    pub name: String,
    /// SHA-256 of the model file, lowercase hex (the model store's address).
    pub sha256: String,
    /// Length of each vector.
    pub dims: u32,
}

/// A model that embeds texts. Synchronous: the kernel adapts its engine to it.
///
/// `embed` returns one vector of [`EmbedderId::dims`] finite numbers per text, in order. The
/// corpus checks the count and the length, and L2-normalises every vector itself (a no-op
/// for vectors that already are), so a dot product is the cosine similarity.
pub trait Embedder {
    /// The model, as the manifest names it.
    fn id(&self) -> EmbedderId;
    /// One vector per text.
    fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError>;
}

/// Why embedding failed, or why a vector is refused.
#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    /// The model or its engine failed.
    #[error("the embedding engine failed")]
    Engine(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// Not one vector per text.
    #[error("the embedder returned {got} vectors for {want} texts")]
    Count {
        /// Texts given.
        want: usize,
        /// Vectors returned.
        got: usize,
    },
    /// A vector of the wrong length.
    #[error("vector {index} has {got} dimensions, {want} were expected")]
    Dims {
        /// Its position.
        index: usize,
        /// Expected length.
        want: usize,
        /// Its length.
        got: usize,
    },
    /// A vector with a NaN or infinite value, or all zeros (it has no direction).
    #[error("vector {index} is all zeros or not finite")]
    Degenerate {
        /// Its position.
        index: usize,
    },
}

/// Checks `v` (position `index`) has `dims` finite values, not all zero, and scales it to
/// length 1.
pub(crate) fn normalised(
    mut v: Vec<f32>,
    dims: usize,
    index: usize,
) -> Result<Vec<f32>, EmbedError> {
    if v.len() != dims {
        return Err(EmbedError::Dims {
            index,
            want: dims,
            got: v.len(),
        });
    }
    if !v.iter().all(|x| x.is_finite()) {
        return Err(EmbedError::Degenerate { index });
    }
    let norm = v
        .iter()
        .map(|x| f64::from(*x) * f64::from(*x))
        .sum::<f64>()
        .sqrt();
    if !norm.is_normal() {
        return Err(EmbedError::Degenerate { index });
    }
    for x in &mut v {
        *x = (f64::from(*x) / norm) as f32;
    }
    Ok(v)
}

/// Embeds `texts` in batches, checking and normalising every vector.
pub(crate) fn embed_all(
    embedder: &dyn Embedder,
    texts: &[String],
    dims: usize,
) -> Result<Vec<Vec<f32>>, EmbedError> {
    const BATCH: usize = 32;
    let mut out = Vec::with_capacity(texts.len());
    for batch in texts.chunks(BATCH) {
        let vectors = embedder.embed(batch)?;
        if vectors.len() != batch.len() {
            return Err(EmbedError::Count {
                want: batch.len(),
                got: vectors.len(),
            });
        }
        for v in vectors {
            let index = out.len();
            out.push(normalised(v, dims, index)?);
        }
    }
    Ok(out)
}
