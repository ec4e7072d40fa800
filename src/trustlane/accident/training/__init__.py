"""Training of the learned accident model (PyTorch, optional extra ``train``): data from the scenario generator,
a compact temporal network, ONNX export. Inference lives in :mod:`trustlane.accident.core.learned`."""
