"""boto3 against the S3 gateway (run by tests/s3_gateway.rs: boto3_interop*).

The server has the repo `images` with `/seed.txt` on `master`; S3_ENDPOINT and S3_TOKEN
(the store's token: access key ID and secret) say where and who. Prints
"boto3 interop: ok" when every check passed; fails with the check's message otherwise.
"""
import io
import os
import sys

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import ClientError

endpoint = os.environ["S3_ENDPOINT"]
token = os.environ["S3_TOKEN"]
# S3_NO_AUTH=1: the server runs with --no-auth and takes any credentials.
no_auth = os.environ.get("S3_NO_AUTH") == "1"


def client(key=token, secret=token):
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        region_name="us-east-1",
        config=Config(
            s3={"addressing_style": "path"},
            retries={"max_attempts": 1},
            connect_timeout=10,
            read_timeout=30,
        ),
    )


def error_code(call):
    try:
        call()
    except ClientError as e:
        return e.response["Error"]["Code"]
    raise AssertionError("expected an S3 error")


s3 = client()
B = "master.images"

names = [b["Name"] for b in s3.list_buckets()["Buckets"]]
assert B in names, names

s3.head_bucket(Bucket=B)
assert s3.get_object(Bucket=B, Key="seed.txt")["Body"].read() == b"seeded"

s3.put_object(Bucket=B, Key="boto/hello.txt", Body=b"hello from boto3")
got = s3.get_object(Bucket=B, Key="boto/hello.txt")
assert got["Body"].read() == b"hello from boto3"
assert got["ContentLength"] == 16
part = s3.get_object(Bucket=B, Key="boto/hello.txt", Range="bytes=6-9")
assert part["Body"].read() == b"from", part
assert part["ContentRange"] == "bytes 6-9/16", part["ContentRange"]
head = s3.head_object(Bucket=B, Key="boto/hello.txt")
assert head["ContentLength"] == 16

# Keys that need encoding in a listing (boto3 asks for encoding-type=url and decodes).
odd = "boto/odd/a b&c%d=e <x>.txt"
s3.put_object(Bucket=B, Key=odd, Body=b"odd")
listed = [o["Key"] for o in s3.list_objects_v2(Bucket=B, Prefix="boto/odd/")["Contents"]]
assert listed == [odd], listed
listed = [o["Key"] for o in s3.list_objects(Bucket=B, Prefix="boto/odd/")["Contents"]]
assert listed == [odd], listed
assert s3.get_object(Bucket=B, Key=odd)["Body"].read() == b"odd"
s3.delete_object(Bucket=B, Key=odd)

for i in range(5):
    s3.put_object(Bucket=B, Key=f"boto/many/{i}.txt", Body=str(i).encode())

# V2 with a delimiter, paged two at a time.
keys, prefixes, token_ = [], [], None
while True:
    kw = {"Bucket": B, "Prefix": "boto/", "Delimiter": "/", "MaxKeys": 1}
    if token_:
        kw["ContinuationToken"] = token_
    page = s3.list_objects_v2(**kw)
    keys += [o["Key"] for o in page.get("Contents", [])]
    prefixes += [p["Prefix"] for p in page.get("CommonPrefixes", [])]
    if not page["IsTruncated"]:
        break
    token_ = page["NextContinuationToken"]
assert keys == ["boto/hello.txt"], keys
assert prefixes == ["boto/many/"], prefixes

# V1 with markers, through boto3's paginator.
pages = s3.get_paginator("list_objects").paginate(
    Bucket=B, Prefix="boto/many/", PaginationConfig={"PageSize": 2}
)
v1 = [o["Key"] for p in pages for o in p.get("Contents", [])]
assert v1 == [f"boto/many/{i}.txt" for i in range(5)], v1

s3.delete_object(Bucket=B, Key="boto/many/0.txt")
assert error_code(lambda: s3.head_object(Bucket=B, Key="boto/many/0.txt")) in ("404", "NoSuchKey")

# Multipart through boto3's transfer manager (5 MiB parts).
big = bytes(i % 251 for i in range(6 * 1024 * 1024 + 7))
cfg = TransferConfig(multipart_threshold=5 * 1024 * 1024, multipart_chunksize=5 * 1024 * 1024)
s3.upload_fileobj(io.BytesIO(big), B, "boto/big.bin", Config=cfg)
back = s3.get_object(Bucket=B, Key="boto/big.bin")["Body"].read()
assert back == big, len(back)

# Errors.
assert error_code(lambda: s3.get_object(Bucket="master.nosuch", Key="x")) == "NoSuchBucket"
assert error_code(lambda: s3.get_object(Bucket=B, Key="nothing")) == "NoSuchKey"
if no_auth:
    assert B in [b["Name"] for b in client("who", "ever").list_buckets()["Buckets"]]
else:
    assert error_code(lambda: client(key="wrong").list_buckets()) == "InvalidAccessKeyId"
    assert error_code(lambda: client(secret="wrong").list_buckets()) == "SignatureDoesNotMatch"
assert error_code(lambda: s3.list_objects_v2(Bucket="a.b.c.d.e")) == "InvalidBucketName"

# Buckets: create (repo and branch), write, delete.
s3.create_bucket(Bucket="master.fresh")
s3.put_object(Bucket="master.fresh", Key="f", Body=b"f")
assert "master.fresh" in [b["Name"] for b in s3.list_buckets()["Buckets"]]
assert error_code(lambda: s3.create_bucket(Bucket="master.fresh")) == "BucketAlreadyOwnedByYou"
s3.delete_bucket(Bucket="master.fresh")
assert error_code(lambda: s3.head_bucket(Bucket="master.fresh")) in ("404", "NoSuchBucket")

print("boto3 interop: ok")
sys.exit(0)
