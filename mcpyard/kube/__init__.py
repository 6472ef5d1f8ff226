"""The only code that talks to the Kubernetes API (used by the operator and the gateway's
cluster source). Nothing is here yet: it arrives with the operator.
"""
