"""Network definitions: named Keras models built from block helpers, apart from the stages that train them."""

# How the U-Net decoder doubles its resolution (models.pix2pix.upsample_conv); here, so options can
# name the choices without importing Keras.
UPSAMPLES = ("transpose", "resize")
