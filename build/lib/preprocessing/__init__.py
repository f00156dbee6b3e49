"""Face detection and cropping, input walkers, and writing face datasets (`img2car preprocess`).

For photo -> face crops elsewhere (e.g. `img2car caricature`), use `preprocessing.detect`:
`find_faces(rgb, FaceOptions(policy="largest"))`, or `detect_faces` + `crop_face`.
"""
