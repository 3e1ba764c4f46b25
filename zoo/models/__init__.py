"""Model constructors of the zoo; each returns an uncompiled Keras model."""

from mat_keras.zoo.models.cifar import cifar_cnn, cifar_mobilenetv2
from mat_keras.zoo.models.ecg import ecg_rnn, ecg_srnn
from mat_keras.zoo.models.fashion import fashion_cnn
from mat_keras.zoo.models.mnist import mnist_mlp

__all__ = ["mnist_mlp", "cifar_cnn", "cifar_mobilenetv2", "ecg_rnn", "ecg_srnn", "fashion_cnn"]
