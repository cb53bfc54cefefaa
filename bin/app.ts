import { createApp } from "../lib/create-app.js";

createApp();
