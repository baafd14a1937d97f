"""The labeller's per-pixel losses: cross-entropy, plus soft Dice or Lovász-softmax, per training image.

Every loss gives one value per image of the batch, leaves out ignored pixels (label 255, ``valid`` 0)
entirely, and honours class weights ``w``:

- ``ce``: sum over the labelled pixels of w[y] x cross-entropy, divided by all S x S pixels (the pix2pix
  labeller's loss as it always was).
- ``dice``: 1 - soft Dice of each class c present in the image's truth,
  ``1 - 2 sum(p_c y_c) / (sum(p_c) + sum(y_c))`` over the labelled pixels (p: softmax, y: one-hot), then
  the mean over those classes weighted by w[c]; classes absent from the truth are left out, as the
  Lovász loss leaves them out (``classes="present"``), so a tile of one or two classes is not pushed to
  predict "nothing" for the other five.
- ``lovasz``: the Lovász-softmax loss (Berman, Triki & Blaschko, CVPR 2018), the Lovász extension of the
  Jaccard loss 1 - IoU of each class present in the image's truth, evaluated at the errors |y_c - p_c|
  sorted in decreasing order; the mean over those classes weighted by w[c]. It optimises IoU directly.

``ce+dice`` and ``ce+lovasz`` are the plain sums of the two terms. A perfect prediction gives ~0 for every
loss; an image with no labelled pixel gives 0.

Usage: ``per_image = pixel_loss("ce+lovasz", logits, safe, valid, class_weights)`` (TensorFlow tensors:
logits (B, S, S, K) float32, safe (B, S, S) int32 with ignored pixels set to any class, valid (B, S, S)
float32 0/1, class_weights (K,) float32).
"""

from __future__ import annotations

LOSSES = ("ce", "ce+dice", "ce+lovasz")


def cross_entropy(logits, safe, valid, class_weights):
    import tensorflow as tf

    ce = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=safe, logits=logits)      # (B, S, S)
    size2 = tf.cast(tf.shape(safe)[1] * tf.shape(safe)[2], tf.float32)
    return tf.reduce_sum(ce * tf.gather(class_weights, safe) * valid, axis=[1, 2]) / size2


def _flat(logits, safe, valid):
    """(p, y, valid) as (B, N, K), (B, N, K), (B, N, 1): softmax and one-hot over the labelled pixels."""
    import tensorflow as tf

    k = tf.shape(logits)[-1]
    b = tf.shape(logits)[0]
    v = tf.reshape(valid, [b, -1, 1])
    p = tf.reshape(tf.nn.softmax(logits), [b, -1, k]) * v
    y = tf.reshape(tf.one_hot(safe, k, dtype=tf.float32), [b, -1, k]) * v
    return p, y, v


def _present_mean(per_class, y, class_weights):
    """Mean of (B, K) per-class losses over the classes present in each image's truth, weighted by w[c]."""
    import tensorflow as tf

    present = tf.cast(tf.reduce_sum(y, axis=1) > 0, tf.float32) * class_weights[None]    # (B, K)
    return tf.math.divide_no_nan(tf.reduce_sum(per_class * present, axis=1), tf.reduce_sum(present, axis=1))


def dice(logits, safe, valid, class_weights):
    import tensorflow as tf

    p, y, _ = _flat(logits, safe, valid)
    inter = tf.reduce_sum(p * y, axis=1)                                                  # (B, K)
    total = tf.reduce_sum(p, axis=1) + tf.reduce_sum(y, axis=1)
    return _present_mean(1.0 - tf.math.divide_no_nan(2.0 * inter, total), y, class_weights)


def lovasz_softmax(logits, safe, valid, class_weights):
    import tensorflow as tf

    p, y, v = _flat(logits, safe, valid)
    # Ignored pixels get error -1, so they sort after every labelled one and change no gradient weight
    # of a labelled pixel; their own terms are masked out below.
    errors = tf.transpose(tf.abs(y - p) * v - (1.0 - v), [0, 2, 1])                       # (B, K, N)
    truth = tf.transpose(y, [0, 2, 1])
    # Only the (image, class) rows with truth pixels are sorted: a tile holds a few of the classes.
    rows = tf.where(tf.reduce_sum(truth, axis=-1) > 0)                                    # (P, 2)
    errors_sorted, order = tf.math.top_k(tf.gather_nd(errors, rows), k=tf.shape(errors)[-1], sorted=True)
    y_sorted = tf.gather(tf.gather_nd(truth, rows), order, batch_dims=1)                 # (P, N)
    v_sorted = tf.cast(errors_sorted >= 0.0, tf.float32)
    gts = tf.reduce_sum(y_sorted, axis=-1, keepdims=True)
    intersection = gts - tf.cumsum(y_sorted, axis=-1)
    union = gts + tf.cumsum((1.0 - y_sorted) * v_sorted, axis=-1)
    jaccard = 1.0 - intersection / union
    grad = tf.concat([jaccard[..., :1], jaccard[..., 1:] - jaccard[..., :-1]], axis=-1)
    per_row = tf.reduce_sum(tf.maximum(errors_sorted, 0.0) * grad, axis=-1)              # (P,)
    return _present_mean(tf.scatter_nd(rows, per_row, tf.shape(errors, out_type=tf.int64)[:2]), y, class_weights)


def pixel_loss(kind: str, logits, safe, valid, class_weights):
    """Per-image loss (B,) of ``kind`` (one of ``LOSSES``)."""
    if kind not in LOSSES:
        raise ValueError(f"loss must be one of {', '.join(LOSSES)}, got {kind!r}")
    loss = cross_entropy(logits, safe, valid, class_weights)
    if kind == "ce+dice":
        loss += dice(logits, safe, valid, class_weights)
    elif kind == "ce+lovasz":
        loss += lovasz_softmax(logits, safe, valid, class_weights)
    return loss
