"""Face detection and cropping, input walkers, and writing face datasets (`img2car preprocess`).

For photo -> face crops elsewhere (`img2car caricature`, the API, benchmarks), use
`preprocessing.finder.crop_finder()`: MTCNN, the most prominent face, framed like the
training crops. `preprocessing.detect` holds the detectors and the crop itself.
"""
