# Call 62 (session 7): the peer side by side at T5-large in one run (b32, the largest batch the
# issue quotes for HF; the docs' large row had no torch.compile figure): flanjax, HF eager, HF
# torch.compile.
source bench/runs/setup.sh
$B --out $OUT/r62.jsonl --sizes large --batch 32 --systems flanjax,hf_eager,hf_compile --variant peers --timeout 280 | tail -4
