"""Network definitions: named Keras models built from block helpers, apart from the stages that train them."""
