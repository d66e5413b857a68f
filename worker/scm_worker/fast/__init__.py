"""Fast paths that read or copy private names of DoWhy, scikit-learn, joblib/loky or
jsonrpcserver. Every such name lives in this package and nowhere else.
"""
