"""msgspec types only: resources, events, the envelope and the manifest loaders.

Imports nothing of eventbatch's other packages; the rest of the pipeline
speaks in these types.
"""
