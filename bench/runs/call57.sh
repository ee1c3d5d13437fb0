# Call 57 (session 7): the encoder on the Pallas kernel (kv lengths since row 63) against cuDNN
# in the step, A/B/A. Row 51 compared them when unpacked rows still reached the kernel as
# all-ones segment ids (2.45-2.66 ms per encoder layer vs 2.08 with lengths), so its verdict
# (cuDNN for the unpacked encoder) may be stale. Large b64 and base b256 (default pool).
source bench/runs/setup.sh
$B --out $OUT/r57.jsonl --sizes large --batch 64 --variant enc_cudnn --timeout 150 | tail -1
$B --out $OUT/r57.jsonl --sizes large --batch 64 --variant enc_pallas --set attention_impl=pallas --timeout 150 | tail -1
$B --out $OUT/r57.jsonl --sizes base --batch 256 --variant enc_cudnn --timeout 100 | tail -1
$B --out $OUT/r57.jsonl --sizes base --batch 256 --variant enc_pallas --set attention_impl=pallas --timeout 100 | tail -1
$B --out $OUT/r57.jsonl --sizes large --batch 64 --variant enc_cudnn2 --timeout 150 | tail -1
