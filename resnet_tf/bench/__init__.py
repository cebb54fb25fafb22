"""Performance measurement (`python -m resnet_tf.bench`, see cli.py): every figure in README's
"Performance" comes from here, built through the training task and runtime set-up."""
