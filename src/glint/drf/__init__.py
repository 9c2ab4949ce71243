"""What every app's API views share: permission classes and the translation of domain errors.

Apps import these; the API face (``glint.api``: the router, authentication, throttling and the
schema) imports the apps. Keeping the shared pieces here lets the arrows point one way.
"""
